"""A per-key spacing limiter: callers wait their turn, nothing is dropped or retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class IntervalLimiter:
    """At most one acquisition per ``interval`` seconds for each key.

    Each caller reserves the next free slot for its key, then sleeps until that slot; there is
    no await between reading and reserving, so concurrent callers get distinct slots in the
    order they arrived. ``defer(key, seconds)`` pushes a key's next slot out, e.g. after a 429.
    State is per process: replicas each keep their own spacing.
    """

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}

    async def acquire(self, key: str) -> float:
        """Wait for ``key``'s next slot; returns the seconds waited."""
        now = self._clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self.interval
        wait = slot - now
        if wait > 0:
            await self._sleep(wait)
        return wait

    def defer(self, key: str, seconds: float) -> None:
        """No slot for ``key`` sooner than ``seconds`` from now."""
        until = self._clock() + max(seconds, 0.0)
        self._next[key] = max(self._next.get(key, until), until)
