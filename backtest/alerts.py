"""Alert rules replayed over history: each rule's expression evaluated with a range query over the
whole replay, then Prometheus's alert state machine applied to it in Python: pending from the
first evaluation the expression returns a series, firing once it has held for `for`, resolved at
the first evaluation without it, or with `keep_firing_for`, once it has been absent that long."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backtest.tsdb import Prometheus

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str | None) -> float:
    """A Prometheus duration (``1h30m``, ``45s``) in seconds."""
    if not text:
        return 0.0
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class Episode:
    """One firing of one alert instance: what a page is."""

    alertname: str
    severity: str
    labels: tuple[tuple[str, str], ...]
    active_at: int
    fired_at: int
    resolved_at: int  # the first evaluation at which it no longer fired (or the end of the replay)

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


def episodes(
    active: Iterable[int], step: int, hold: float, keep_firing: float, end: int
) -> list[tuple[int, int, int]]:
    """(active_at, fired_at, resolved_at) of each firing, from the evaluation times (multiples of
    ``step``) at which the expression returned the alert's series."""
    out: list[tuple[int, int, int]] = []
    times = sorted(active)
    i = 0
    while i < len(times):
        # a run of consecutive evaluations returning the series
        run_start = times[i]
        j = i
        while j + 1 < len(times) and times[j + 1] - times[j] <= step:
            j += 1
        fired = next((t for t in times[i : j + 1] if t - run_start >= hold), None)
        if fired is None:  # pending only: reset at the first evaluation without it
            i = j + 1
            continue
        # firing until the series is gone (for keep_firing_for) at an evaluation
        last = times[j]
        i = j + 1
        while True:
            gone = last + step
            resolved = gone
            if keep_firing:
                waited = 0
                while waited < keep_firing:
                    resolved += step
                    waited += step
                resolved = gone + waited
            if i < len(times) and times[i] < resolved:
                # the expression came back while the alert still fired: the same firing
                k = i
                while k + 1 < len(times) and times[k + 1] - times[k] <= step:
                    k += 1
                last = times[k]
                i = k + 1
                continue
            out.append((run_start, fired, min(resolved, end + step)))
            break
    return out


def alert_series(
    result: Iterable[dict[str, Any]], rule_labels: dict[str, str]
) -> dict[tuple[tuple[str, str], ...], set[int]]:
    """The evaluation times of each alert a range query's series make: one alert per label set
    without the metric name (and with the rule's labels), as Prometheus makes them. The arms of
    an `or` keep their own series' names, so a range query returns one series per arm; the alert
    does not change when one arm hands over to the other."""
    times_of: dict[tuple[tuple[str, str], ...], set[int]] = {}
    for series in result:
        labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
        labels.update(rule_labels)
        times_of.setdefault(tuple(sorted(labels.items())), set()).update(
            int(t) for t, _ in series["values"]
        )
    return times_of


def evaluate(prometheus: Prometheus, rule: dict[str, Any], start: int, end: int) -> list[Episode]:
    hold = duration(rule.get("for"))
    keep = duration(rule.get("keep_firing_for"))
    rule_labels = rule.get("labels", {})
    found = []
    result = prometheus.query_range(rule["expr"], start, end)
    for labels_key, times in alert_series(result, rule_labels).items():
        for active_at, fired_at, resolved_at in episodes(times, prometheus.step, hold, keep, end):
            found.append(
                Episode(
                    rule["alert"],
                    rule_labels.get("severity", ""),
                    labels_key,
                    active_at,
                    fired_at,
                    resolved_at,
                )
            )
    return found
