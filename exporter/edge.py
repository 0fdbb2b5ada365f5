"""The public edge: who the client is behind trusted proxies, per-client/per-key rate limits, and
the public listener's global admission rate."""

from __future__ import annotations

from collections import OrderedDict

from passiton_common.proxies import (
    _MAX_FORWARDED_HOPS,
    ClientAddress,
    client_network,
    forwarded_for,
    parse_networks,
)

# Shared with the bridge's console (its login throttle): passiton_common/proxies.py.
__all__ = [
    "_MAX_FORWARDED_HOPS",
    "ClientAddress",
    "GlobalRate",
    "RateLimiter",
    "client_network",
    "forwarded_for",
    "parse_networks",
]


class RateLimiter:
    """Token bucket per key (client address or beacon key), at most ``max_keys`` keys (LRU)."""

    def __init__(self, per_minute: int, max_keys: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._max = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        tokens, last = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)


class GlobalRate:
    """The public listener's admission: at most ``rate`` requests a second from everyone together
    (a burst of ``rate``), each request given its turn in arrival order (GCRA, the generic cell
    rate algorithm: one "theoretical arrival time" instead of a bucket per client).

    ``reserve(now)`` is the time a request waits for its turn: 0.0 within the rate, the delay until
    its turn past it (the turn is then taken), or None when its turn is more than ``max_wait``
    away (it is refused, no turn taken). Time comes from the caller (``time.monotonic()`` in the
    exporter, a driven clock in tests), so the decisions are deterministic.
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
