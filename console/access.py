"""Logging in and out."""

from __future__ import annotations

import secrets

from aiohttp import web

from bridge.storage.console import (
    AuditEntry,
)
from console.auth import (
    Session,
    Sessions,
    valid_username,
    verify_password,
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


async def login_page(request: web.Request) -> web.StreamResponse:
    return render(request, "login.html", next=_safe_next(request.query.get("next", "")))


def _safe_next(target: str) -> str:
    # Only a path of this console; never another site (open redirect).
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


async def login(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await _form(request)
    username, password = form.get("username", "").strip(), form.get("password", "")
    user = await console.store.get_user(username) if valid_username(username) else None
    if not verify_password(user.password_hash if user else "", password) or user is None:
        log.info("console login refused", extra={"username": username[:64]})
        return render(
            request,
            "login.html",
            status=401,
            error="Unknown user or wrong password.",
            next=_safe_next(form.get("next", "")),
        )
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
