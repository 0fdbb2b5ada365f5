"""Bounded label values that cannot be squatted.

A label admits at most N distinct values; a newcomer to a full label folds to ``other`` (counted).
A value unseen for ``idle_seconds`` is forgotten: its slot frees up and ``on_expire`` removes its
series, so junk values that stop arriving make room for real ones instead of holding the bound
until a restart. A value that keeps arriving is never evicted by newcomers, however many.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import Counter, Gauge

OTHER = "other"


class Clock:
    """A coarse clock: read once per batch by the recorder, shared by its labels."""

    __slots__ = ("now", "source")

    def __init__(self, source: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.now = source()

    def tick(self) -> float:
        self.now = self.source()
        return self.now


class BoundedLabel:
    """Admits at most ``limit`` distinct values; newcomers past it become ``other``, counted.

    With ``idle_seconds``, values unseen that long are forgotten (``expire``), and
    ``on_expire(values)`` is called to remove their series.
    """

    __slots__ = (
        "_clock",
        "_expired",
        "_idle",
        "_limit",
        "_overflow",
        "_seen",
        "_size",
        "name",
        "on_expire",
    )

    def __init__(
        self,
        name: str,
        limit: int,
        overflow: Counter,
        size: Gauge,
        *,
        expired: Counter | None = None,
        idle_seconds: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self._seen: OrderedDict[str, float] = OrderedDict()  # value -> last seen, oldest first
        self._limit = limit
        self._overflow = overflow.labels(label=name)
        self._size = size.labels(label=name)
        self._expired = expired.labels(label=name) if expired is not None else None
        self._idle = idle_seconds
        self._clock = clock or Clock()
        self.on_expire: Callable[[set[str]], None] | None = None

    def __call__(self, value: str, weight: int = 1) -> str:
        """``value``, or ``other`` when the label is full (``weight``: how many events asked, each
        counted as an overflow)."""
        seen = self._seen
        now = self._clock.now
        if value in seen:
            seen[value] = now
            seen.move_to_end(value)
            return value
        if value == OTHER:
            return value
        if len(seen) >= self._limit and self._idle is not None:
            self.expire()
        if len(seen) < self._limit:
            seen[value] = now
            self._size.set(len(seen))
            return value
        self._overflow.inc(weight)
        return OTHER

    def expire(self) -> set[str]:
        """Forget the values unseen for ``idle_seconds``; their series go with them."""
        seen = self._seen
        if self._idle is None or not seen:
            return set()
        cutoff = self._clock.now - self._idle
        gone: set[str] = set()
        while seen:
            value, last = next(iter(seen.items()))
            if last > cutoff:
                break
            seen.popitem(last=False)
            gone.add(value)
        if gone:
            self._size.set(len(seen))
            if self._expired is not None:
                self._expired.inc(len(gone))
            if self.on_expire is not None:
                self.on_expire(gone)
        return gone

    def __contains__(self, value: str) -> bool:
        return value in self._seen

    def __len__(self) -> int:
        return len(self._seen)
