"""A public listener's global admission, for both services: every request to the public
application takes its turn under a rate from everyone together before its route's handler runs,
so before any body is read or checked.

Why a turn and not an immediate refusal: the per-client limits already answer a flood with a
cheap 429, yet a flood of those answers alone kept one core busy and the event loop, which also
serves ``/metrics`` (and the exporter's ``/v1/events``, the bridge's webhook), more than 250 ms
late (``benchmarks/public_flood.py``). What bounds the loop's work is how often a client may ask
again, not how cheaply it is answered: a request past the rate waits for its turn (a timer, no
work), one request at a time per connection and at most the listener's connection cap, so the
public listener serves at most the rate whatever the senders do. A request whose turn is more
than ``max_wait`` away is answered 503 with ``Retry-After`` after that long (held too, for the
same reason) and its connection closed. Both outcomes are counted (``delayed``, ``shed``): the
rules read them as the flood signal (``PublicListenerFlood``) and as what explains the loop's
lag during a flood (``EventLoopLagHigh`` pages high only without one:
prometheus/rules/runtime.yml).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import Counter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
# what became of a request past the rate: the label values of each service's counter
THROTTLE_OUTCOMES = ("delayed", "shed")


class GlobalRate:
    """The public listener's admission: at most ``rate`` requests a second from everyone together
    (a burst of ``rate``), each request given its turn in arrival order (GCRA, the generic cell
    rate algorithm: one "theoretical arrival time" instead of a bucket per client).

    ``reserve(now)`` is the time a request waits for its turn: 0.0 within the rate, the delay until
    its turn past it (the turn is then taken), or None when its turn is more than ``max_wait``
    away (it is refused, no turn taken). Time comes from the caller (``time.monotonic()`` in the
    services, a driven clock in tests), so the decisions are deterministic.
    """

    def __init__(self, rate: float, max_wait: float) -> None:
        if rate <= 0 or max_wait < 0:
            raise ValueError("a global rate is positive and its wait at least 0")
        self._interval = 1.0 / rate
        # GCRA's tolerance: a burst of `rate` requests at one instant are all on time
        self._tolerance = (max(1.0, rate) - 1.0) * self._interval
        self.max_wait = max_wait
        self._tat: float | None = None  # the theoretical arrival time of the next request

    def reserve(self, now: float) -> float | None:
        tat = now if self._tat is None else max(self._tat, now)
        wait = tat - self._tolerance - now
        rounding = self._interval * 1e-6  # of the sums of intervals
        if wait <= rounding:
            wait = 0.0
        elif wait > self.max_wait + rounding:
            return None
        self._tat = tat + self._interval
        return wait


def admission_middleware(
    rate: GlobalRate,
    clock: Callable[[], float],
    *,
    throttled: Counter,
    overloaded: Callable[[], web.StreamResponse],
) -> Middleware:
    """The public application's middleware (one per application: it holds ``rate``).

    ``throttled`` is the service's counter of the two outcomes (its one label, ``outcome``, one of
    ``THROTTLE_OUTCOMES``); ``overloaded`` builds the 503's body in the service's own error format
    (``Retry-After`` and the connection's close are added here)."""
    delayed, shed = (throttled.labels(outcome=outcome).inc for outcome in THROTTLE_OUTCOMES)
    retry_after = str(max(1, math.ceil(rate.max_wait)))

    @web.middleware
    async def admission(request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = rate.reserve(clock())
        if wait is None:
            shed()
            await asyncio.sleep(rate.max_wait)
            response = overloaded()
            response.headers["Retry-After"] = retry_after
            response.force_close()
            return response
        if wait > 0.0:
            delayed()
            await asyncio.sleep(wait)
        return await handler(request)

    return admission
