"""The recorder's access to its series: cached labelled children under a series budget, and the
increments of a batch applied once per series (counters summed, histogram observations bucketed).

Every label value that reaches a ``Children`` is bounded already; the budget is one more bound,
per metric. Counter and histogram values are updated through client_python's value objects
directly: ``Counter.inc`` and ``Histogram.observe`` re-check, per call, what holds for every
child here (a labelled child, a positive amount, no exemplar).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

from prometheus_client import Counter
from prometheus_client import values as client_values
from prometheus_client.metrics import MetricWrapperBase

from exporter.labels import OTHER


class Children:
    """Cache of labelled children: one dict lookup instead of prometheus_client's labels() path.

    Past ``budget`` series, a new combination folds its open-ended labels (``bounded``
    positions) to ``other``, counted in ``passiton_exporter_series_budget_overflow_total``
    (``weight``: how many events asked for it).
    """

    __slots__ = ("_bounded", "_budget", "_cache", "_metric", "_overflow")

    def __init__(
        self,
        metric: MetricWrapperBase,
        budget: int | None = None,
        bounded: tuple[int, ...] = (),
        overflow: Counter | None = None,
    ) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}
        self._budget = budget
        self._bounded = bounded
        self._overflow = overflow.labels(metric=metric._name) if overflow is not None else None

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        return child if child is not None else self.weighted(values, 1)

    def weighted(self, values: tuple[str, ...], weight: int) -> Any:
        """The child of ``values``, asked for by ``weight`` events (overflows count per event)."""
        child = self._cache.get(values)
        if child is None:
            if self._budget is not None and len(self._cache) >= self._budget and self._bounded:
                folded = tuple(OTHER if i in self._bounded else v for i, v in enumerate(values))
                if folded != values:
                    if self._overflow is not None:
                        self._overflow.inc(weight)
                    child = self._cache.get(folded)
                    return child if child is not None else self._add(folded)
            child = self._add(values)
        return child

    def existing(self, values: tuple[str, ...]) -> Any:
        """The child of exactly ``values`` if it exists (nothing folded, nothing counted)."""
        return self._cache.get(values)

    def _add(self, values: tuple[str, ...]) -> Any:
        child = self._cache[values] = self._metric.labels(*values)
        return child

    def forget(self, position: int, gone: set[str]) -> int:
        """Remove every series whose label at ``position`` is one of ``gone``."""
        doomed = [key for key in self._cache if key[position] in gone]
        for key in doomed:
            del self._cache[key]
            self._metric.remove(*key)
        return len(doomed)

    def __len__(self) -> int:
        return len(self._cache)


# Counters, gauges and histogram buckets are increased straight on client_python's value objects.
# In a single process without the value's lock: the exporter updates and reads its metrics on its
# event loop's thread only, so the lock guards nothing there, and taking it costs four times the
# addition. In multiprocess mode the value is a file's, written by its own ``inc``.
if client_values.ValueClass is client_values.MutexValue:

    def _increase(value: Any, amount: float) -> None:
        value._value += amount

    def add(child: Any, amount: float) -> None:
        """``child.inc(amount)`` (a counter's or gauge's labelled child, ``amount`` >= 0)
        without ``inc``'s checks, straight on its value."""
        child._value._value += amount

else:  # multiprocess mode, which the exporter does not run in

    def _increase(value: Any, amount: float) -> None:
        value.inc(amount)

    def add(child: Any, amount: float) -> None:
        """``child.inc(amount)`` without ``inc``'s checks, straight on its value."""
        child._value.inc(amount)


def observe_many(child: Any, values: list[float]) -> None:
    """``child.observe(v)`` for each of ``values`` (a histogram's labelled child), bucketed first:
    one increment per bucket that received any. ``observe`` puts a value in the first bucket whose
    upper bound is ``>= v``: over the sorted values, the values up to a bound are counted with one
    bisection per bound."""
    ordered = sorted(values)
    buckets = child._buckets
    below = 0
    for index, bound in enumerate(child._upper_bounds):
        upto = bisect_right(ordered, bound)
        if upto > below:
            _increase(buckets[index], upto - below)
            below = upto
            if below == len(ordered):
                break
    _increase(child._sum, sum(values))


def observe(child: Any, value: float) -> None:
    """``child.observe(value)`` (a histogram's labelled child) without its per-call checks."""
    _increase(child._buckets[bisect_left(child._upper_bounds, value)], 1)
    _increase(child._sum, value)
