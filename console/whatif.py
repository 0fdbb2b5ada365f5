"""What if: how often an alert would have fired over a period with another threshold.

The rule's own expression, ``for``, ``keep_firing_for`` and its group's evaluation interval
come from Prometheus (``/api/v1/rules``); its threshold series (``...:threshold``, which carries
``passiton_alert_threshold`` or the default) is replaced by the proposed constant, and the
expression is evaluated on the rule's own grid (``whatif_eval.plan``) in range queries of at
most 11,000 points, one after another, whose true evaluations ``AlertReplay`` turns into
firings as Prometheus would have. The work is bounded: ``MAX_CHUNKS`` queries, ``MAX_SERIES``
series, ``MAX_ANSWER_BYTES`` per answer, ``DEADLINE_SECONDS`` in all.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bridge.storage.console import ConsoleStore, HistoryFilter, Scope
from console.forms import TUNABLE
from console.upstream import UpstreamError, prometheus_get, prometheus_range
from console.whatif_eval import AlertReplay, Plan, PlanError, plan

_THRESHOLD_SERIES = re.compile(r"organization:[a-z_]{1,80}:threshold")
MAX_SERIES = 500  # label sets in one what-if (organizations): more, and it asks for one
MAX_ANSWER_BYTES = 32 * 2**20  # one range query's answer
DEADLINE_SECONDS = 60.0  # every query of one what-if together
MAX_LISTED = 200  # firings kept for the page


@dataclass
class WhatIf:
    alertname: str
    organization_id: str
    threshold: float | None = None
    error: str = ""
    expression: str = ""
    for_seconds: float = 0.0
    keep_firing_seconds: float = 0.0
    interval_seconds: float = 0.0
    step_seconds: float = 0.0
    coarse: bool = False  # evaluated on a step coarser than the rule's interval
    queries: int = 0
    evaluations: int = 0
    fired: int = 0  # would have fired
    would_fire: list[tuple[datetime, str]] = field(default_factory=list)  # the first MAX_LISTED
    actually_fired: int = 0
    severity: str = ""  # of the evaluated rule tier


def fires(samples: list[float], step: float, for_seconds: float) -> list[float]:
    """When each alert of one series fires, given the instants (on a grid of ``step``) its
    expression was true: ``AlertReplay`` without ``keep_firing_for``."""
    if not samples:
        return []
    replay = AlertReplay(step, for_seconds, 0.0)
    replay.feed("", (round((t - samples[0]) / step) for t in samples))
    return [samples[0] + i * step for i, _ in replay.firings]


def _only(organizations: tuple[str, ...]) -> str:
    """A vector of one sample per organization, to keep only theirs with ``and on``."""
    return " or ".join(
        f'label_replace(vector(1), "organization_id", {json.dumps(o, ensure_ascii=False)}, "", "")'
        for o in organizations
    )


async def _rule(http: httpx.AsyncClient, prometheus_url: str, alertname: str) -> Any:
    """The tier of the alert whose expression reads the per-organization threshold, with its
    group's interval; None when Prometheus has none."""
    groups = (await prometheus_get(http, prometheus_url, "/api/v1/rules", {"type": "alert"}))[
        "groups"
    ]
    for group in groups:
        for rule in group["rules"]:
            if rule.get("name") == alertname and _THRESHOLD_SERIES.search(rule.get("query", "")):
                return {**rule, "interval": float(group.get("interval") or 0)}
    return None


async def what_if(
    http: httpx.AsyncClient,
    prometheus_url: str,
    store: ConsoleStore,
    alertname: str,
    organization_id: str,
    threshold: str,
    since: datetime,
    until: datetime,
    within: Scope = None,
) -> WhatIf:
    """``within``: the viewer's organizations (None: every one); ``organization_id`` must be
    one of them (the caller checks)."""
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
    organizations = (organization_id,) if organization_id else within
    if organizations is not None and not organizations:
        result.error = "you see no organization"
        return result
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            rule = await _rule(http, prometheus_url, alertname)
            if rule is None:
                result.error = f"Prometheus has no {alertname} rule reading a threshold series"
                return result
            expression = _THRESHOLD_SERIES.sub(
                lambda m: f"(0 * {m.group(0)} + {value!r})", rule["query"], count=1
            )
            if organizations is not None:
                expression = f"({expression}) and on (organization_id) ({_only(organizations)})"
            result.expression = expression
            result.for_seconds = float(rule.get("duration") or 0)
            result.keep_firing_seconds = float(rule.get("keepFiringFor") or 0)
            result.interval_seconds = rule["interval"]
            result.severity = str(rule.get("labels", {}).get("severity", ""))
            grid = plan(since.timestamp(), until.timestamp(), rule["interval"], result.for_seconds)
            result.step_seconds, result.coarse = grid.step, grid.coarse
            replay = await _replay(http, prometheus_url, expression, grid, result)
    except PlanError as exc:
        result.error = str(exc)
        return result
    except UpstreamError as exc:
        result.error = str(exc)
        return result
    except TimeoutError:
        result.error = (
            f"Prometheus did not evaluate the period within {DEADLINE_SECONDS:g}s;"
            " choose fewer days or one organization"
        )
        return result
    result.fired = len(replay.firings)
    result.would_fire = sorted(
        (datetime.fromtimestamp(grid.at(i), UTC), dict(key).get("organization_id", ""))
        for i, key in replay.firings
    )[:MAX_LISTED]
    # the same tier: an alert name can have several, told apart by their severity label
    actual = await store.history(
        HistoryFilter(
            alertname=alertname,
            organization_id=organization_id,
            severity=result.severity,
            since=since,
            until=until,
            within=within,
        ),
        None,
        10_000,
    )
    result.actually_fired = len(actual)
    return result


async def _replay(
    http: httpx.AsyncClient, prometheus_url: str, expression: str, grid: Plan, result: WhatIf
) -> AlertReplay:
    """The chunks' range queries, in order, fed to one replay."""
    replay = AlertReplay(grid.step, result.for_seconds, result.keep_firing_seconds, grid.count_from)
    for first, last in grid.chunks():
        series = await prometheus_range(
            http,
            prometheus_url,
            expression,
            grid.at(first),
            grid.at(last),
            grid.step,
            MAX_ANSWER_BYTES,
        )
        result.queries += 1
        result.evaluations += last - first + 1
        for s in series:
            key = tuple(sorted(s.get("metric", {}).items()))
            replay.feed(key, (grid.index(float(t)) for t, _ in s.get("values", [])))
        if len(replay.alerts()) > MAX_SERIES:
            raise UpstreamError(
                f"more than {MAX_SERIES} series would fire; narrow the what-if to one organization"
            )
    return replay
