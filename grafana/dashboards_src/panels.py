"""The building blocks of the dashboards: panels (time series, stat, row), variables, the layout
on Grafana's 24-column grid, and the dashboard around them.

Every panel gets a title, a description and a unit, queries the ``${datasource}`` variable, and
takes rates over ``$__rate_interval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

Panel = dict[str, Any]


# --- building blocks ---------------------------------------------------------------------------


def target(expr: str, legend: str = "") -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend or "__auto", "range": True, "instant": False}


def _thresholds(steps: Sequence[tuple[float, str]]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def timeseries(
    title: str,
    description: str,
    unit: str,
    *targets: dict[str, Any],
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
    thresholds: Sequence[tuple[float, str]] = (),
    overrides: Sequence[dict[str, Any]] = (),
    repeat: str | None = None,
) -> Panel:
    custom: dict[str, Any] = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 20 if stack else 0,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if thresholds else "off"},
    }
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": custom,
        "thresholds": _thresholds(thresholds),
        "color": {"mode": "palette-classic"},
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    panel: Panel = {
        "type": "timeseries",
        "title": title,
        "description": description,
        "w": width,
        "h": height,
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": list(targets),
    }
    if repeat:
        panel["repeat"] = repeat
        panel["repeatDirection"] = "h"
        panel["maxPerRow"] = 2
    return panel


def stat(
    title: str,
    description: str,
    unit: str,
    expr: str,
    *,
    legend: str = "",
    width: int = 6,
    thresholds: Sequence[tuple[float, str]] = (),
    decimals: int | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": _thresholds(thresholds),
        "color": {"mode": "thresholds"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "w": width,
        "h": 4,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        },
        "targets": [target(expr, legend)],
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "w": 24, "h": 1, "collapsed": False, "panels": []}


def dashed(series: str) -> dict[str, Any]:
    """An override drawing the series whose name matches ``series`` (a regex) dashed, in red."""
    return {
        "matcher": {"id": "byRegexp", "options": series},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
        ],
    }


def query_variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable", "qryType": 1},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "options": [],
        "regex": "",
    }


DATASOURCE_VARIABLE = {
    "name": "datasource",
    "label": "Data source",
    "type": "datasource",
    "query": "prometheus",
    "current": {},
    "hide": 0,
    "includeAll": False,
    "multi": False,
    "options": [],
    "refresh": 1,
    "regex": "",
}


def _layout(panels: Sequence[Panel]) -> list[Panel]:
    """Places panels left to right, wrapping at Grafana's 24 columns; numbers them."""
    out, x, y, row_height = [], 0, 0, 0
    for number, source in enumerate(panels, start=1):
        panel = {k: v for k, v in source.items() if k not in ("w", "h")}
        w, h = source["w"], source["h"]
        if x + w > 24 or panel["type"] == "row":
            x, y, row_height = 0, y + row_height, 0
        panel["id"] = number
        panel["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        if panel["type"] != "row":
            panel["datasource"] = DATASOURCE
            panel["targets"] = [
                {**t, "refId": chr(ord("A") + i), "datasource": DATASOURCE}
                for i, t in enumerate(panel["targets"])
            ]
        out.append(panel)
        x, row_height = x + w, max(row_height, h)
        if panel["type"] == "row":
            x, y, row_height = 0, y + h, 0
    return out


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: Sequence[Panel],
    variables: Sequence[dict[str, Any]] = (),
    time_from: str = "now-6h",
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["passiton"],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "links": [
            {
                "title": "PassItOn",
                "type": "dashboards",
                "tags": ["passiton"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "annotations": {
            "list": [
                {
                    "name": "Firing alerts",
                    "datasource": DATASOURCE,
                    "enable": True,
                    "iconColor": "red",
                    "expr": 'ALERTS{alertstate="firing", severity=~"critical|high"}',
                    "step": "1m",
                    "titleFormat": "{{alertname}}",
                    "textFormat": "{{severity}} {{category}} {{organization_id}}",
                    "useValueForTime": False,
                }
            ]
        },
        "templating": {"list": [DATASOURCE_VARIABLE, *variables]},
        "panels": _layout(panels),
    }


ORG = 'organization_id=~"$organization"'
