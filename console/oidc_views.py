"""Signing in with the OpenID provider: ``GET /console/oidc/start`` and its way back,
``GET /console/oidc/callback`` (the client's redirect URI at the provider).

The start makes a flow (state, nonce, PKCE verifier, where to go after) and keeps it in a
signed cookie of ten minutes (HttpOnly, SameSite=Lax: the provider's redirect back is a
top-level navigation), then sends the browser to the provider. The callback takes the flow
once (its cookie is cleared whatever happens), checks the state in constant time, exchanges
the code, validates the ID token (``console/oidc.py``), maps its claims to a name, a role and
organizations (``console/oidc_identity.py``) and writes them to the user at every sign-in; the
session is then the one a password login makes. Every refusal is a page saying why (400 for a
broken or forged leg, 403 for a person the provider or the mapping does not admit, 502 when the
provider cannot be reached), audited as a failed login and counted; none holds a code or token.
"""

from __future__ import annotations

import secrets
from typing import cast
from urllib.parse import urlsplit

from aiohttp import web

from bridge.storage.console import AuditEntry
from bridge.storage.console_oidc import NameTaken, OidcStore
from console.access import _safe_next
from console.auth import Session
from console.common import (
    PREFIX,
    Console,
    _console,
    _https,
    _visitor,
    log,
    render,
)
from console.oidc import Flow, OidcClient, OidcError, code_error
from console.oidc_identity import map_identity, subject_of
from passiton_common.proxies import forwarded_for

FLOW_COOKIE = "passiton_console_oidc"
FLOW_SECONDS = 600
_PURPOSE = "oidc-flow"
MAX_CODE = 4096
# refusals meaning the provider no longer grants the person a place here: their rights go
WITHDRAWN_BY = ("no_role", "no_organizations", "bad_organizations", "domain")


def _client(request: web.Request) -> OidcClient:
    client = _console(request).oidc
    if client is None:
        raise web.HTTPNotFound(text="OpenID sign-in is not configured (OIDC_ISSUER)\n")
    return client


def redirect_uri(request: web.Request, console: Console) -> str:
    """The callback's absolute URL: on the configured public address (what the provider has
    registered), else on the address this request came to."""
    if console.public_url:
        parts = urlsplit(console.public_url)
        origin = f"{parts.scheme}://{parts.netloc}"
    else:
        origin = str(request.url.origin())
    return f"{origin}{PREFIX}/oidc/callback"


def _cookie_name(request: web.Request, console: Console) -> str:
    return f"__Host-{FLOW_COOKIE}" if _https(request, console) else FLOW_COOKIE


def _set_flow(request: web.Request, response: web.StreamResponse, flow: Flow) -> None:
    console = _console(request)
    assert console.sessions is not None
    https = _https(request, console)
    fields = {"s": flow.state, "n": flow.nonce, "v": flow.verifier, "r": flow.redirect_uri}
    sealed = console.sessions.seal({**fields, "x": flow.next}, _PURPOSE)
    response.set_cookie(
        _cookie_name(request, console),
        sealed,
        max_age=FLOW_SECONDS,
        path="/" if https else f"{PREFIX}/",
        secure=https,
        httponly=True,
        samesite="Lax",
    )


def _take_flow(request: web.Request, response: web.StreamResponse) -> Flow | None:
    """The flow of this browser's sign-in, if any; its cookie is cleared (one use)."""
    console = _console(request)
    assert console.sessions is not None
    name = _cookie_name(request, console)
    data = console.sessions.unseal(request.cookies.get(name), _PURPOSE, FLOW_SECONDS)
    if name in request.cookies:
        https = _https(request, console)
        response.del_cookie(
            name, path="/" if https else f"{PREFIX}/", secure=https, httponly=True, samesite="Lax"
        )
    if data is None or not all(k in data for k in "snvrx"):
        return None
    return Flow(data["s"], data["n"], data["v"], data["r"], _safe_next(data["x"]))


async def oidc_start(request: web.Request) -> web.StreamResponse:
    console, client = _console(request), _client(request)
    assert console.http is not None
    flow = Flow.new(redirect_uri(request, console), _safe_next(request.query.get("next", "")))
    try:
        url = await client.authorization_url(console.http, flow)
    except OidcError as exc:
        return await _refused(request, exc, "")
    redirect = web.HTTPSeeOther(url)
    _set_flow(request, redirect, flow)
    raise redirect


async def oidc_callback(request: web.Request) -> web.StreamResponse:
    console, client = _console(request), _client(request)
    assert console.http is not None
    cleared = web.Response()  # collects the flow cookie's removal
    flow = _take_flow(request, cleared)
    account = ""
    try:
        flow = _checked_leg(request, flow)
        tokens = await client.exchange(console.http, flow, request.query["code"])
        claims = await client.claims(console.http, flow, tokens, console.now().timestamp())
        subject = subject_of(claims)
        try:
            mapped = map_identity(client.config, client.config.issuer, claims)
        except OidcError as exc:
            await _withdraw(request, client, subject, exc)
            raise
        account = mapped.identity.username
        detail = {
            "ip": _address(request),
            "method": "oidc",
            "role": mapped.identity.role,
            "organizations": ", ".join(mapped.identity.organizations or ()) or "every",
        }
        store = _store(console)
        try:
            entry = AuditEntry(console.now(), "", "login", None, None, detail)
            user = await store.sign_in_oidc(mapped.identity, console.now(), entry)
        except NameTaken:
            raise OidcError(
                403,
                "name_taken",
                f"The console already has a user named {account} who does not sign in with"
                " this provider; an administrator must rename or remove that user first.",
            ) from None
    except OidcError as exc:
        response = await _refused(request, exc, account)
        _carry_cookies(cleared, response)
        return response
    visitor = _visitor(request)
    visitor.session = Session(secrets.token_urlsafe(16), user.username, user.session_epoch)
    visitor.set_cookie = True
    log.info("console sign-in", extra={"username": user.username, "method": "oidc"})
    redirect = web.HTTPSeeOther(flow.next)
    _carry_cookies(cleared, redirect)
    raise redirect


def _checked_leg(request: web.Request, flow: Flow | None) -> Flow:
    """The flow, once the way back is this browser's (its state) and carries a code."""
    query = request.query
    if flow is None:
        raise OidcError(
            400,
            "flow",
            "This sign-in has expired or was started in another browser; start it again.",
        )
    if not flow.state_matches(query.get("state", "")):
        raise OidcError(400, "state", "This sign-in's state does not match; start it again.")
    if "error" in query:
        error = code_error(query.get("error"))
        description = " ".join(query.get("error_description", "").split())[:200]
        status = 403 if error in ("access_denied", "login_required", "consent_required") else 400
        raise OidcError(
            status,
            "provider_error",
            f"The sign-in provider did not sign you in ({error}"
            + (f": {description}" if description else "")
            + ").",
        )
    code = query.get("code", "")
    if not code or len(code) > MAX_CODE:
        raise OidcError(400, "code", "The sign-in provider sent no code back; start again.")
    return flow


async def _withdraw(request: web.Request, client: OidcClient, subject: str, exc: OidcError) -> None:
    """The provider no longer grants this subject a role or organizations: their user (if
    any) keeps no rights and their sessions end."""
    console = _console(request)
    if exc.reason not in WITHDRAWN_BY:
        return
    entry = AuditEntry(
        console.now(), "", "rights withdrawn", None, None, {"method": "oidc", "reason": exc.reason}
    )
    await _store(console).withdraw_oidc(client.config.issuer, subject, entry)


def _store(console: Console) -> OidcStore:
    # ConsoleQueries has both interfaces (bridge/storage/console_oidc.py)
    return cast(OidcStore, console.store)


def _address(request: web.Request) -> str:
    return _console(request).clients.resolve(request.remote, forwarded_for(request.headers))


async def _refused(request: web.Request, exc: OidcError, account: str) -> web.Response:
    console = _console(request)
    assert console.login_failures is not None
    console.login_failures.labels(reason="oidc").inc()
    address = _address(request)
    log.info(
        "console sign-in refused",
        extra={"username": account or "(oidc)", "ip": address, "reason": exc.reason},
    )
    await console.store.audit(
        AuditEntry(
            console.now(),
            account or "(oidc)",
            "login failed",
            detail={"ip": address, "method": "oidc", "reason": exc.reason},
        )
    )
    return render(request, "problem.html", status=exc.status, message=exc.message)


def _carry_cookies(source: web.StreamResponse, target: web.StreamResponse) -> None:
    for name, morsel in source.cookies.items():
        target.cookies[name] = morsel
