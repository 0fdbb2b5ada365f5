"""The public listener's global admission: every request to the public application (beacon,
``beacon.js``, Stripe webhook, health) takes its turn under ``EXPORTER_PUBLIC_RATE_PER_SECOND``
before its route's handler runs, so before any body is read or checked.

Why a turn and not an immediate refusal: the per-client limits already answer a flood with a
cheap 429, yet a flood of those answers alone kept one core busy and the event loop, which also
serves ``/metrics`` and ``/v1/events``, more than 250 ms late (``benchmarks/public_flood.py``).
What bounds the loop's work is how often a client may ask again, not how cheaply it is answered:
a request past the rate waits for its turn (a timer, no work), one request at a time per
connection and at most ``EXPORTER_PUBLIC_MAX_CONNECTIONS`` connections, so the public listener
serves at most the rate whatever the senders do. A request whose turn is more than
``EXPORTER_PUBLIC_MAX_WAIT_SECONDS`` away is answered 503 with ``Retry-After`` after that long
(held too, for the same reason) and its connection closed. Both outcomes are counted in
``passiton_exporter_public_throttled_total{outcome="delayed"|"shed"}``, which the rules read as
the flood signal (``PublicListenerFlood``) and as what explains the loop's lag during a flood
(``EventLoopLagHigh`` pages high only without one: prometheus/rules/runtime.yml).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from exporter.config import ExporterConfig
from exporter.edge import GlobalRate
from exporter.handlers.http import error_response
from exporter.metrics import ExporterMetrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def public_admission(
    config: ExporterConfig, metrics: ExporterMetrics, clock: Callable[[], float]
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The public application's middleware (one per application: it holds the rate)."""
    rate = GlobalRate(config.public_rate_per_second, config.public_max_wait_seconds)
    delayed = metrics.public_throttled.labels(outcome="delayed")
    shed = metrics.public_throttled.labels(outcome="shed")
    max_wait = config.public_max_wait_seconds
    retry_after = str(max(1, math.ceil(max_wait)))

    @web.middleware
    async def admission(request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = rate.reserve(clock())
        if wait is None:
            shed.inc()
            await asyncio.sleep(max_wait)
            response = error_response(
                503, "overloaded", "the public listener is over its request rate; retry later"
            )
            response.headers["Retry-After"] = retry_after
            response.force_close()
            return response
        if wait > 0.0:
            delayed.inc()
            await asyncio.sleep(wait)
        return await handler(request)

    return admission
