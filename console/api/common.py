"""What the API's handlers share: the ``Api`` object, JSON answers and errors, reading bodies,
query parameters, and authentication (``authenticate``: Bearer token -> ``Principal``).

Only ``Authorization: Bearer`` authenticates: the API reads no cookie, so a console session
cannot be ridden by another site (no CSRF token is needed, and none is accepted instead).
Failed token attempts are throttled per client address (``console/throttle.py``): over the
limit, 429 with ``Retry-After`` before the token is even looked up.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import httpx
import msgspec
from aiohttp import web

from bridge.storage import StorageUnavailable
from bridge.storage.console import ConsoleStore
from bridge.storage.console_api import ApiStore
from console.api.schema import Error
from console.api.tokens import Principal, principal, same_hash, token_hash, well_formed
from console.auth import allowed
from console.forms import ORGANIZATION
from console.host import ConsoleHost
from console.throttle import LoginThrottle
from passiton_common.proxies import ClientAddress, forwarded_for

MAX_BODY = 16 * 1024
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
BIGINT_MAX = 2**63 - 1
FAILURES_PER_ADDRESS = 20  # failed tokens per address per throttle window (15 minutes)
_ACCOUNT = "api-token"  # the throttle's account key: every token attempt counts per address

S = TypeVar("S", bound=msgspec.Struct)
Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
_encoder = msgspec.json.Encoder()


def api_throttle() -> LoginThrottle:
    # per address only: no account-wide limit a botnet could use to lock every client out
    return LoginThrottle(
        pair_limit=FAILURES_PER_ADDRESS,
        address_limit=FAILURES_PER_ADDRESS,
        account_limit=2**62,
    )


@dataclass
class Api:
    """What the API's handlers share; one per API application."""

    host: ConsoleHost
    clients: ClientAddress = field(default_factory=lambda: ClientAddress(()))
    throttle: LoginThrottle = field(default_factory=api_throttle)
    body_timeout_seconds: float = 10.0
    http: httpx.AsyncClient | None = None

    @property
    def store(self) -> ConsoleStore:
        return self.host.queries()

    @property
    def tokens(self) -> ApiStore:
        # ConsoleQueries has both interfaces (bridge/storage/console_api.py)
        return cast(ApiStore, self.host.queries())

    def now(self) -> datetime:
        return self.host.now()


API = web.AppKey("api", Api)


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def api(request: web.Request) -> Api:
    return request.app[API]


def answer(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(value), status=status, content_type="application/json")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    response = answer(Error(message), status)
    response.headers.update(headers or {})
    return response


@web.middleware
async def api_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every answer is JSON, errors as ``{"error": ...}``; never cached."""
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        response = error(exc.status, exc.reason.lower(), headers)
    except StorageUnavailable:
        response = error(503, "the alert database is unavailable; try again")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _unauthorized(message: str, code: str = "invalid_token") -> ApiError:
    challenge = 'Bearer realm="passiton"' + (f', error="{code}"' if code else "")
    return ApiError(401, message, {"WWW-Authenticate": challenge})


async def authenticate(request: web.Request) -> Principal:
    """The caller's rights from ``Authorization: Bearer pio_...`` (cookies are ignored):
    401 for no, an unknown, an expired or a revoked token; 429 after too many failures
    from the address."""
    state = api(request)
    address = state.clients.resolve(request.remote, forwarded_for(request.headers))
    wait = state.throttle.retry_after(_ACCOUNT, address)
    if wait > 0:
        raise ApiError(
            429,
            "too many failed token attempts from this address; try again later",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("a personal API token is required: Authorization: Bearer pio_...", "")
    token = token.strip()
    found = None
    if well_formed(token):
        computed = token_hash(token)
        found = await state.tokens.token_by_hash(computed)
        if found is not None and not same_hash(found.token_hash, computed):
            found = None
    now = state.now()
    user = await state.store.get_user(found.username) if found and found.live(now) else None
    if found is None or user is None:
        state.throttle.failed(_ACCOUNT, address)
        raise _unauthorized("unknown, expired or revoked token")
    await state.tokens.touch_token(found.id, now)
    return principal(found, user)


def guarded(role: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler behind authentication and the route's role (403 below it)."""

    async def checked(request: web.Request) -> web.StreamResponse:
        who = await authenticate(request)
        if not allowed(who.role, role):
            raise ApiError(403, f"this needs the {role} role; the token has {who.role}")
        return await handler(request, who)

    return checked


async def read_body(request: web.Request, kind: type[S]) -> S:
    """The JSON body as ``kind``: 413 over ``MAX_BODY``, 408 when it does not arrive in
    time, 400 (with the reason) when it is not valid."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise ApiError(413, f"body over {MAX_BODY} bytes")
    try:
        async with asyncio.timeout(api(request).body_timeout_seconds):
            raw = await request.content.read(MAX_BODY + 1)
    except TimeoutError:
        raise ApiError(408, "body not received in time") from None
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"body over {MAX_BODY} bytes")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"invalid body: {exc}") from None
    except msgspec.DecodeError:
        raise ApiError(400, "the body is not JSON") from None


async def read_optional_body(request: web.Request, kind: type[S]) -> S:
    """``read_body``, or ``kind()`` (its defaults) when no body was sent."""
    if request.content_length == 0 or (
        request.content_length is None and not request.can_read_body
    ):
        return kind()
    return await read_body(request, kind)


def row_id(text: str) -> int:
    """An id from the path; anything that cannot be one is a 404 (never a 500)."""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= BIGINT_MAX:
        raise ApiError(404, "not found")
    return int(text)


def limit_of(request: web.Request) -> int:
    text = request.query.get("limit", "")
    if not text:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(400, f"limit: a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def choice(request: web.Request, name: str, allowed_values: tuple[str, ...]) -> str:
    value = request.query.get(name, "")
    if value and value not in allowed_values:
        raise ApiError(400, f"{name}: one of {', '.join(allowed_values)}")
    return value


def organization_filter(request: web.Request, who: Principal) -> str:
    """The ``organization`` filter; one outside the token's organizations is a 403."""
    value = request.query.get("organization", "")
    if value and not ORGANIZATION.match(value):
        raise ApiError(400, "organization: 1-128 letters, digits, '_', '.', ':' or '-'")
    if value and not who.sees(value):
        raise ApiError(403, f"organization {value} is outside the token's organizations")
    return value
