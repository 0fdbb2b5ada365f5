"""Rate limits for the public listener: a fixed number of requests per window per key (the
client's address; a person), in bounded memory (the least recently seen keys are forgotten)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def hit(self, key: str) -> float | None:
        """Count one request; None when allowed, else the seconds until the window ends."""
        now = self.clock()
        started, count = self._windows.pop(key, (now, 0))
        if now - started >= self.window:
            started, count = now, 0
        count += 1
        self._windows[key] = (started, count)
        while len(self._windows) > self.max_keys:
            self._windows.popitem(last=False)
        if count > self.limit:
            return max(started + self.window - now, 0.001)
        return None
