"""What the console's pages share: the Console object, rendering, the session middleware,
role checks, audit entries. The pages are in access.py, incidents.py (the Now page), alerts.py,
history.py, review.py and settings.py; views.py mounts them under ``/console/``.

Every page needs a session (viewer or above); acknowledge, silence and retry need responder;
settings changes need admin, the users an admin of every organization. A user limited to some
organizations (of any role: an admin so limited is an organization admin) sees their incidents,
alerts and settings only (and the review of those): another organization's incident, alert or
settings is a 403 ("outside your organizations"), one that does not exist a 404. Every
POST carries the session's CSRF token, and every action writes an audit entry in the same
transaction as its effect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

import httpx
import jinja2
from aiohttp import web
from prometheus_client import Counter

from bridge.oncall.working_hours import DEFAULT as WORKING_HOURS
from bridge.oncall.working_hours import WorkingHours, parse_working_hours
from bridge.storage import StorageUnavailable
from bridge.storage.console import (
    AlertRow,
    AuditEntry,
    ConsoleStore,
    ConsoleUser,
)
from bridge.webhook import clean_text
from console.auth import (
    COOKIE,
    PasswordWork,
    Session,
    Sessions,
    allowed,
)
from console.host import ConsoleHost
from console.oidc import OidcClient
from console.throttle import LoginThrottle
from passiton_common.proxies import ClientAddress

log = logging.getLogger(__name__)

PREFIX = "/console"
# authorised by a signed single-use token in the form, not by a session: no CSRF token
TOKEN_PATHS = frozenset({f"{PREFIX}/push/acknowledge"})
PAGE_SIZE = 100
CSV_MAX_ROWS = 1_000_000
# how long an acknowledgement lasts ("policy": the escalation policy's ack_timeout, if any)
ACK_CHOICES: dict[str, timedelta | str] = {
    "policy": "policy",
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "resolved": "resolved",
}
ACK_LABELS = {
    "policy": "as the policy says",
    "30m": "for 30 minutes",
    "1h": "for 1 hour",
    "4h": "for 4 hours",
    "resolved": "until resolved",
}
SNOOZE_CHOICES = {
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
SILENCE_CHOICES = {"30m": 1800, "1h": 3600, "4h": 14400, "12h": 43200, "1d": 86400, "7d": 604800}
SELF_RESOLVE_SECONDS = 600.0
ATTEMPT_LABELS = {
    "sent": "sent",
    "retry": "failed, will retry",
    "dead": "gave up",
    "requeued": "queued again",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# served without a session: logging in, the OpenID sign-in's two legs, and what browsers fetch
# without one (the web app's manifest, its service worker)
PUBLIC_PATHS = frozenset(
    f"{PREFIX}/{p}"
    for p in ("login", "oidc/start", "oidc/callback", "manifest.webmanifest", "sw.js")
)


@dataclass
class Visitor:
    session: Session
    user: ConsoleUser | None = None
    set_cookie: bool = False


@dataclass
class Console:
    """What the console's handlers share; one per console application."""

    host: ConsoleHost
    secret: str = ""
    session_seconds: float = 12 * 3600.0
    public_url: str = ""
    body_timeout_seconds: float = 10.0
    clients: ClientAddress = field(default_factory=lambda: ClientAddress(()))
    http: httpx.AsyncClient | None = None
    sessions: Sessions | None = None
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    work: PasswordWork = field(default_factory=PasswordWork)
    login_failures: Counter | None = None
    # the review's working hours (BRIDGE_CONSOLE_WORKING_HOURS)
    working_hours: WorkingHours = field(default_factory=lambda: parse_working_hours(WORKING_HOURS))
    # one what-if at a time per process: each is up to MAX_CHUNKS range queries
    whatif_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    oidc: OidcClient | None = None  # sign-in with the OpenID provider (console/oidc_views.py)
    env: jinja2.Environment = field(default_factory=lambda: templates())

    @property
    def store(self) -> ConsoleStore:
        return self.host.queries()

    def now(self) -> datetime:
        return self.host.now()


CONSOLE = web.AppKey("console", Console)
VISITOR: Any = (
    web.RequestKey("passiton_console_visitor", Visitor)
    if hasattr(web, "RequestKey")
    else "passiton_console_visitor"
)


@cache
def templates() -> jinja2.Environment:
    """The console's templates, compiled once per process: they are packaged files that do not
    change while serving (no stat() per include), and compiling them costs 200 ms of CPU, which
    every console a process started (a test suite starts hundreds) paid again."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("console", "templates"),
        autoescape=True,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    return env


def safe_url(value: object) -> str:
    """Only http(s) links reach an href (annotations come from outside)."""
    text = str(value or "")
    return text if text.lower().startswith(("http://", "https://")) else ""


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return ""
    seconds = max(int((now - then).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def _visitor(request: web.Request) -> Visitor:
    return request[VISITOR]


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    console = _console(request)
    visitor = _visitor(request)
    assert console.sessions is not None
    body = console.env.get_template(template).render(
        user=visitor.user,
        csrf=console.sessions.csrf_token(visitor.session),
        prefix=PREFIX,
        now=console.now(),
        age=_age,
        stamp=_stamp,
        duration=_duration,
        path=request.path,
        query=request.query,
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _problem(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "problem.html", status=status, message=message)


def _forbidden(request: web.Request, message: str) -> web.HTTPForbidden:
    """The problem page as a 403 for the handler to raise (an object it may not see)."""
    page = _problem(request, 403, message)
    return web.HTTPForbidden(text=page.text, content_type="text/html")


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session, login requirement, CSRF, and the security headers of every console page."""
    if not request.path.startswith(f"{PREFIX}/"):
        # the bare prefix only redirects to PREFIX/ (the session cookie's path: it is not sent
        # here, so this must neither ask for a login nor set a new cookie)
        return await handler(request)
    console = _console(request)
    assert console.sessions is not None
    if request.method == "POST":
        refused = await _read_form(request, console)
        if refused is not None:
            return _headers(request, console, refused)
    session = console.sessions.load(request.cookies.get(_cookie_name(request, console)))
    visitor = Visitor(session or Sessions.anonymous(), set_cookie=session is None)
    if session is not None and session.username:
        try:
            user = await console.store.get_user(session.username)
        except StorageUnavailable:
            return web.Response(status=503, text="database unavailable\n")
        if user is not None and user.session_epoch == session.epoch:
            visitor.user = user
    request[VISITOR] = visitor
    public = request.path in PUBLIC_PATHS or request.path in TOKEN_PATHS
    public = public or request.path.startswith(f"{PREFIX}/static/")
    if request.method == "POST" and request.path not in TOKEN_PATHS:
        form = await request.post()  # read by _read_form
        token = form.get("csrf", "")
        if not isinstance(token, str) or not console.sessions.csrf_ok(visitor.session, token):
            response: web.StreamResponse = _problem(
                request, 403, "The form's security token did not match (CSRF). Reload and retry."
            )
            return _finish(console, visitor, response, request)
    if visitor.user is None and not public:
        if request.method == "GET" and "text/csv" not in request.headers.get("Accept", ""):
            target = request.path_qs
            redirect = web.HTTPSeeOther(f"{PREFIX}/login?{urlencode({'next': target})}")
            _finish(console, visitor, redirect, request)
            raise redirect
        response = web.Response(status=401, text="log in first\n")
        return _finish(console, visitor, response, request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # raised (redirects, 404s): the cookie and headers go on the exception, which aiohttp
        # turns into the response
        _finish(console, visitor, exc, request)
        raise
    except StorageUnavailable:
        response = _problem(request, 503, "The alert database is unavailable; try again.")
    return _finish(console, visitor, response, request)


async def _read_form(request: web.Request, console: Console) -> web.Response | None:
    """Reads (and caches) a POST's form under the webhook's body timeout and the host's size
    limit; the refusal when it does not arrive in time (408) or is too large (413)."""
    length = request.content_length
    if length is not None and length > request.client_max_size:
        return web.Response(status=413, text="form too large\n", headers={"Connection": "close"})
    try:
        async with asyncio.timeout(console.body_timeout_seconds):
            await request.post()
    except web.HTTPRequestEntityTooLarge:
        return web.Response(status=413, text="form too large\n", headers={"Connection": "close"})
    except TimeoutError:
        text = f"form not received within {console.body_timeout_seconds:g}s\n"
        return web.Response(status=408, text=text, headers={"Connection": "close"})
    return None


def _https(request: web.Request, console: Console) -> bool:
    """Served over TLS: the request came over it, or the configured public URL is https (a
    TLS-terminating proxy in front)."""
    return request.secure or console.public_url.lower().startswith("https://")


def _cookie_name(request: web.Request, console: Console) -> str:
    # __Host-: Secure, Path=/ and no Domain, so no other path or subdomain can set or shadow it
    return f"__Host-{COOKIE}" if _https(request, console) else COOKIE


def _finish(
    console: Console, visitor: Visitor, response: web.StreamResponse, request: web.Request
) -> web.StreamResponse:
    assert console.sessions is not None
    https = _https(request, console)
    if visitor.set_cookie and not response.prepared:
        response.set_cookie(
            _cookie_name(request, console),
            console.sessions.dump(visitor.session),
            max_age=int(console.session_seconds),
            # __Host- requires Path=/; over plain http the cookie stays on the console's path
            path="/" if https else f"{PREFIX}/",
            secure=https,
            httponly=True,
            samesite="Lax",
        )
    return _headers(request, console, response)


def _headers(
    request: web.Request, console: Console, response: web.StreamResponse
) -> web.StreamResponse:
    if response.prepared:
        return response
    if _https(request, console):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not response.prepared:
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
            " frame-ancestors 'none'; form-action 'self'",
        )
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def require(role: str) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            user = _visitor(request).user
            if user is None or not allowed(user.role, role):
                return _problem(request, 403, f"This needs the {role} role.")
            return await handler(request)

        return checked

    return wrap


def platform_admin(handler: Handler) -> Handler:
    """What spans every organization (the console's users): an admin of every organization
    only. An admin limited to organizations (an organization admin) tunes their own
    organizations' settings, never the platform's."""

    async def checked(request: web.Request) -> web.StreamResponse:
        user = _visitor(request).user
        if user is None or not allowed(user.role, "admin") or user.organizations is not None:
            return _problem(request, 403, "This needs an admin of every organization.")
        return await handler(request)

    return checked


def _audit(request: web.Request, action: str, alert: AlertRow | None = None, **detail: Any):
    user = _visitor(request).user
    assert user is not None
    return AuditEntry(
        _console(request).now(),
        user.username,
        action,
        alert.fingerprint if alert else None,
        alert.starts_at if alert else None,
        detail,
    )


async def _form(request: web.Request) -> dict[str, str]:
    """The form's text fields, control characters (NUL, which PostgreSQL cannot store, among
    them) replaced as in alerts; a password is taken as typed (it is only hashed)."""
    return {
        k: v if k == "password" else clean_text(v)
        for k, v in (await request.post()).items()
        if isinstance(v, str)
    }


BIGINT_MAX = 2**63 - 1


def _row_id(text: str) -> int:
    """A row id from a URL; anything that cannot be one (beyond bigint included) is a 404."""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= BIGINT_MAX:
        raise web.HTTPNotFound(text="no such row")
    return int(text)


def _back(location: str, notice: str = "") -> web.HTTPSeeOther:
    """The redirect after a POST (for the handler to raise), with a notice to show."""
    if notice:
        location += ("&" if "?" in location else "?") + urlencode({"notice": notice})
    return web.HTTPSeeOther(location)
