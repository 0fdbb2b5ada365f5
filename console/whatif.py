"""What if: how often an alert would have fired over a period with another threshold.

The rule's own expression and ``for`` come from Prometheus (``/api/v1/rules``); its threshold
series (``...:threshold``, which carries ``passiton_alert_threshold`` or the default) is
replaced by the proposed constant, the expression is evaluated as a range query over the
period, and each run of consecutive true samples at least ``for`` long counts as one firing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from bridge.storage.console import ConsoleStore, HistoryFilter
from console.forms import TUNABLE
from console.upstream import UpstreamError, prometheus_get

_THRESHOLD_SERIES = re.compile(r"organization:[a-z_]{1,80}:threshold")
MAX_POINTS = 10_000


@dataclass
class WhatIf:
    alertname: str
    organization_id: str
    threshold: float | None = None
    error: str = ""
    expression: str = ""
    for_seconds: float = 0.0
    step_seconds: float = 0.0
    would_fire: list[tuple[datetime, str]] = field(default_factory=list)  # (when, organization)
    actually_fired: int = 0
    severity: str = ""  # of the evaluated rule tier


def fires(samples: list[float], step: float, for_seconds: float) -> list[float]:
    """Start times (+ for) of the runs of consecutive samples lasting at least for_seconds."""
    out: list[float] = []
    run_start: float | None = None
    previous: float | None = None
    fired = False
    for t in samples:
        if previous is None or t - previous > step * 1.5:
            run_start, fired = t, False
        previous = t
        assert run_start is not None
        if not fired and t - run_start >= for_seconds:
            out.append(t)
            fired = True
    return out


async def what_if(
    http: httpx.AsyncClient,
    prometheus_url: str,
    store: ConsoleStore,
    alertname: str,
    organization_id: str,
    threshold: str,
    since: datetime,
    until: datetime,
) -> WhatIf:
    result = WhatIf(alertname, organization_id)
    if alertname not in TUNABLE:
        result.error = f"alert name must be one of {', '.join(TUNABLE)}"
        return result
    low, high, unit, _ = TUNABLE[alertname]
    try:
        value = float(threshold)
    except ValueError:
        result.error = f"threshold: not a number: {threshold[:20]!r}"
        return result
    if not math.isfinite(value) or not low <= value <= high:
        result.error = f"threshold for {alertname} must be within {low}..{high} ({unit})"
        return result
    result.threshold = value
    try:
        groups = (await prometheus_get(http, prometheus_url, "/api/v1/rules", {"type": "alert"}))[
            "groups"
        ]
        # the tier whose expression reads the per-organization threshold
        rule = next(
            (
                r
                for g in groups
                for r in g["rules"]
                if r.get("name") == alertname and _THRESHOLD_SERIES.search(r.get("query", ""))
            ),
            None,
        )
        if rule is None:
            result.error = f"Prometheus has no {alertname} rule reading a threshold series"
            return result
        expression = _THRESHOLD_SERIES.sub(
            lambda m: f"(0 * {m.group(0)} + {value!r})", rule["query"], count=1
        )
        result.expression = expression
        result.for_seconds = float(rule.get("duration", 0))
        result.severity = str(rule.get("labels", {}).get("severity", ""))
        span = (until - since).total_seconds()
        step = max(15.0, math.ceil(span / MAX_POINTS))
        result.step_seconds = step
        data = await prometheus_get(
            http,
            prometheus_url,
            "/api/v1/query_range",
            {
                "query": expression,
                "start": f"{since.timestamp():.3f}",
                "end": f"{until.timestamp():.3f}",
                "step": f"{step:g}",
            },
        )
    except UpstreamError as exc:
        result.error = str(exc)
        return result
    for series in data.get("result", []):
        org = series.get("metric", {}).get("organization_id", "")
        if organization_id and org != organization_id:
            continue
        times = [float(t) for t, _ in series.get("values", [])]
        for t in fires(times, step, result.for_seconds):
            result.would_fire.append((datetime.fromtimestamp(t, UTC), org))
    result.would_fire.sort()
    # the same tier: an alert name can have several, told apart by their severity label
    actual = await store.history(
        HistoryFilter(
            alertname=alertname,
            organization_id=organization_id,
            severity=result.severity,
            since=since,
            until=until,
        ),
        None,
        10_000,
    )
    result.actually_fired = len(actual)
    return result
