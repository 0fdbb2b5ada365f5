"""Logging in and out."""

from __future__ import annotations

import math
import secrets

from aiohttp import web

from bridge.storage.console import (
    AuditEntry,
)
from console.auth import (
    Busy,
    Session,
    Sessions,
    valid_username,
)
from console.common import (
    PREFIX,
    _audit,
    _console,
    _form,
    _visitor,
    log,
    render,
)
from passiton_common.proxies import forwarded_for


async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_form(request, next=_safe_next(request.query.get("next", "")))


def _login_form(request: web.Request, status: int = 200, **context: object) -> web.Response:
    """The login page: the password form, and "Sign in with ..." when a provider is set."""
    oidc = _console(request).oidc
    name = oidc.config.display_name if oidc is not None else ""
    return render(request, "login.html", status=status, oidc_name=name, **context)


def _safe_next(target: str) -> str:
    # Only a path of this console; never another site (open redirect).
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


def _refuse(request: web.Request, form: dict[str, str], status: int, error: str, wait: float = 0):
    console = _console(request)
    assert console.login_failures is not None
    reason = {401: "refused", 429: "throttled", 503: "busy"}[status]
    console.login_failures.labels(reason=reason).inc()
    response = _login_form(request, status, error=error, next=_safe_next(form.get("next", "")))
    if wait:
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """A login, throttled (``console/throttle.py``) before its password is checked; the check
    runs off the event loop (``PasswordWork``). Every wrong password is audited and counted."""
    console = _console(request)
    form = await _form(request)
    username, password = form.get("username", "").strip(), form.get("password", "")
    account = username[:64] if valid_username(username) else "(invalid)"
    address = console.clients.resolve(request.remote, forwarded_for(request.headers))
    wait = console.throttle.retry_after(account, address)
    if wait > 0:
        return _refuse(request, form, 429, "Too many failed logins; try again later.", wait)
    user = await console.store.get_user(username) if valid_username(username) else None
    try:
        good = await console.work.verify(user.password_hash if user else "", password)
    except Busy:
        return _refuse(request, form, 503, "The console is busy; try again in a moment.", 1)
    if not good or user is None:
        console.throttle.failed(account, address)
        log.info("console login refused", extra={"username": account, "ip": address})
        await console.store.audit(
            AuditEntry(console.now(), account, "login failed", detail={"ip": address})
        )
        return _refuse(request, form, 401, "Unknown user or wrong password.")
    console.throttle.succeeded(account, address)
    visitor = _visitor(request)
    visitor.session = Session(secrets.token_urlsafe(16), user.username, user.session_epoch)
    visitor.set_cookie = True
    await console.store.audit(
        AuditEntry(console.now(), user.username, "login", detail={"ip": request.remote or ""})
    )
    raise web.HTTPSeeOther(_safe_next(form.get("next", "")))


async def logout(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    visitor = _visitor(request)
    assert visitor.user is not None
    await console.store.end_sessions(visitor.user.username, _audit(request, "logout"))
    visitor.session = Sessions.anonymous()
    visitor.set_cookie = True
    raise web.HTTPSeeOther(f"{PREFIX}/login")
