"""Bounded label values: the first N distinct values are kept, later ones fold to 'other'."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OTHER = "other"


class BoundedLabel:
    """Admits at most ``limit`` distinct values; newcomers past it become ``other``, counted."""

    __slots__ = ("_admitted", "_limit", "_overflow", "_size")

    def __init__(self, name: str, limit: int, overflow: Counter, size: Gauge) -> None:
        self._admitted: set[str] = set()
        self._limit = limit
        self._overflow = overflow.labels(label=name)
        self._size = size.labels(label=name)

    def __call__(self, value: str) -> str:
        admitted = self._admitted
        if value in admitted or value == OTHER:
            return value
        if len(admitted) < self._limit:
            admitted.add(value)
            self._size.set(len(admitted))
            return value
        self._overflow.inc()
        return OTHER

    def __len__(self) -> int:
        return len(self._admitted)
