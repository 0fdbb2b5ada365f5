"""The what-if's evaluation, pure: the step grid an alert rule is replayed on, its chunks (one
range query each, within Prometheus's 11,000 points per series), and ``AlertReplay``, which
turns the instants the rule's expression was true into firings as Prometheus's rule manager
would (``for``, ``keep_firing_for``), across chunk boundaries.

The grid is the rule group's own evaluation interval, so a run of true evaluations is seen the
way the rule saw it (a 300 s ``for`` is never judged on a 260 s step). A period too long for
that within ``MAX_EVALUATIONS`` is evaluated on a coarser step, a multiple of the interval and
at most half the ``for`` (the answer is then marked approximate: a run shorter than
``for`` + step may fall between samples); past that, refused.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field

# Prometheus answers at most 11,000 points per series in one range query.
MAX_POINTS_PER_QUERY = 11_000
# The bound on one what-if's work: at most this many range queries, so at most
# MAX_CHUNKS * MAX_POINTS_PER_QUERY evaluations of the rule per series (30 days at a 15 s
# interval is 172,800: 16 queries).
MAX_CHUNKS = 24
MAX_EVALUATIONS = MAX_CHUNKS * MAX_POINTS_PER_QUERY


class PlanError(ValueError):
    """The period cannot be evaluated at the rule's resolution within the bound."""


@dataclass(frozen=True)
class Plan:
    """Evaluations at ``origin + i * step`` for i in [0, count); firings are counted from
    ``count_from`` on (the evaluations before it, one ``for`` long, warm the rule up)."""

    origin: float  # seconds since the epoch
    step: float
    count: int
    count_from: int
    interval: float  # the rule group's
    coarse: bool  # step > interval: an approximation

    def chunks(self) -> Iterator[tuple[int, int]]:
        """(first index, last index) of each range query, inclusive, in order."""
        for first in range(0, self.count, MAX_POINTS_PER_QUERY):
            yield first, min(first + MAX_POINTS_PER_QUERY, self.count) - 1

    def at(self, index: int) -> float:
        return self.origin + index * self.step

    def index(self, timestamp: float) -> int:
        return round((timestamp - self.origin) / self.step)

    @property
    def chunk_count(self) -> int:
        return math.ceil(self.count / MAX_POINTS_PER_QUERY)


def plan(
    since: float,
    until: float,
    interval: float,
    for_seconds: float,
    max_evaluations: int = MAX_EVALUATIONS,
) -> Plan:
    """The grid for [since, until]: the rule group's ``interval``, coarsened (a multiple of it,
    at most ``for_seconds / 2``) only when the period needs more than ``max_evaluations``."""
    if until <= since:
        raise PlanError("the period is empty")
    interval = interval if interval > 0 else 15.0

    def grid(step: float) -> tuple[int, int]:
        warm = math.ceil(for_seconds / step)
        return warm, warm + math.floor((until - since) / step) + 1

    step = interval
    warm, count = grid(step)
    if count > max_evaluations:
        step = interval * math.ceil(
            (until - since + for_seconds) / (max_evaluations - 2) / interval
        )
        if for_seconds <= 0 or step > for_seconds / 2:
            days = (max_evaluations - 2) * interval / 86400
            raise PlanError(
                f"at the rule's {interval:g}s evaluation interval the what-if covers at most"
                f" {days:.1f} days (for: {for_seconds:g}s); choose fewer days"
            )
        warm, count = grid(step)
    return Plan(since - warm * step, step, count, warm, interval, step > interval)


@dataclass
class _Alert:
    firing: bool
    active_at: int  # index of the evaluation it became pending at
    last_true: int


@dataclass
class AlertReplay:
    """Prometheus's alerting state machine on a grid (``rules/alerting.go``): an alert is
    pending from its first true evaluation, fires at the first evaluation at least ``for``
    after it, and a pending alert is dropped at its first false evaluation; a firing alert
    resolves at a false evaluation at least ``keep_firing_for`` after the first false one (at
    the first, without it). Each resolved alert that becomes true again is a new one.

    ``feed`` takes each series' true evaluations in increasing order, chunk after chunk: the
    state carries over, so a ``for`` (or ``keep_firing_for``) straddling a boundary counts."""

    step: float
    for_seconds: float
    keep_firing_seconds: float
    count_from: int = 0
    firings: list[tuple[int, Hashable]] = field(default_factory=list)  # (index, series)
    _alerts: dict[Hashable, _Alert] = field(default_factory=dict)

    def alerts(self) -> list[Hashable]:
        """Every series that was ever true."""
        return list(self._alerts)

    def feed(self, series: Hashable, indexes: Iterable[int]) -> None:
        alert = self._alerts.get(series)
        for i in indexes:
            if alert is not None and i <= alert.last_true:
                raise ValueError(f"evaluations out of order: {i} after {alert.last_true}")
            if alert is not None and i - alert.last_true > 1:  # false evaluations between
                false_for = (i - alert.last_true - 2) * self.step  # first false .. last false
                if not alert.firing or false_for >= self.keep_firing_seconds:
                    alert = None
            if alert is None:
                alert = _Alert(False, i, i)
                self._alerts[series] = alert
            alert.last_true = i
            if not alert.firing and (i - alert.active_at) * self.step >= self.for_seconds - 1e-9:
                alert.firing = True
                if i >= self.count_from:
                    self.firings.append((i, series))
