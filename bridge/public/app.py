"""The public listener's application: the callbacks of the paging services and the e-mail
links, and nothing else (no console, no metrics, no webhook: those stay on the internal
listener). Small bodies only; every request first takes its turn under the listener's global
rate (``BRIDGE_PUBLIC_RATE_PER_SECOND``, passiton_common/admission.py), then every client address
has a budget of requests per minute."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import Counter

from bridge.public import ack_links, calendars, pagerduty, twilio
from bridge.public.context import CONTEXT, PublicContext
from bridge.public.guard import RateLimiter
from passiton_common.admission import GlobalRate, Middleware, admission_middleware

MAX_BODY = 64 * 1024  # Slack's interaction payloads are the largest, well under this
PER_ADDRESS_PER_MINUTE = 120
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_public_app(
    context: PublicContext,
    *,
    extra_routes: Mapping[str, Handler] | None = None,
    limiter: RateLimiter | None = None,
    admission: Middleware | None = None,
) -> web.Application:
    """``extra_routes``: more POST endpoints (path → handler), e.g. Slack's interactions;
    ``admission``: the global rate's middleware (``public_admission``), run before all else."""
    limiter = limiter or RateLimiter(PER_ADDRESS_PER_MINUTE, 60.0)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = limiter.hit(request.remote or "")
        if wait is not None:
            context.count(_endpoint(request.path), "rate_limited")
            return web.Response(
                status=429, text="too many requests\n", headers={"Retry-After": str(int(wait) + 1)}
            )
        return await handler(request)

    middlewares = [guard] if admission is None else [admission, guard]
    app = web.Application(client_max_size=MAX_BODY, middlewares=middlewares)
    app[CONTEXT] = context
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_post("/v1/twilio/sms", twilio.sms)
    app.router.add_post("/v1/twilio/voice", twilio.voice)
    app.router.add_post("/v1/pagerduty/webhook", pagerduty.webhook)
    app.router.add_get("/v1/ack/{token}", ack_links.show)
    app.router.add_post("/v1/ack/{token}", ack_links.act)
    app.router.add_get("/v1/oncall/{kind}/{ident}.ics", calendars.feed)
    for path, handler in (extra_routes or {}).items():
        app.router.add_post(path, handler)
    return app


def public_admission(
    rate_per_second: int,
    max_wait_seconds: float,
    throttled: Counter,
    clock: Callable[[], float] = time.monotonic,
) -> Middleware:
    """The global rate's middleware; ``throttled``: ``passiton_bridge_public_throttled_total``."""

    def overloaded() -> web.StreamResponse:
        return web.Response(
            status=503, text="overloaded: the public listener is over its request rate\n"
        )

    return admission_middleware(
        GlobalRate(rate_per_second, max_wait_seconds),
        clock,
        throttled=throttled,
        overloaded=overloaded,
    )


def _endpoint(path: str) -> str:
    """A bounded label for a request path."""
    if path.startswith("/v1/ack/"):
        return "ack_link"
    if path.startswith("/v1/oncall/"):
        return "calendar"
    known = {"/v1/twilio/sms": "twilio_sms", "/v1/twilio/voice": "twilio_voice"}
    known |= {"/v1/slack/interactions": "slack", "/v1/pagerduty/webhook": "pagerduty"}
    return known.get(path, "other")


async def _healthy(_: web.Request) -> web.Response:
    return web.Response(text="OK\n")
