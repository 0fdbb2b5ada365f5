"""The public edge: who the client is behind trusted proxies, and per-client/per-key rate limits
(the public listener's global admission rate is passiton_common/admission.py's, shared with the
bridge)."""

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
