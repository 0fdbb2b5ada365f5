"""The Grafana dashboards, as code, one module a dashboard; ``grafana/build_dashboards.py`` writes
them to ``grafana/dashboards/*.json``.

``panels`` holds the building blocks (panels, variables, layout, the dashboard around them). Where
``prometheus/rules/*.yml`` records a series (ratios, baselines, thresholds, SLO windows) the
panels read the recorded series, so a dashboard shows exactly what the alerts compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .alerting import alerting
from .api import api
from .payments import payments
from .traffic import traffic
from .widgets import widgets

# Each generated file and the function building its dashboard, in the order they are written.
DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "payments.json": payments,
    "widgets.json": widgets,
    "traffic.json": traffic,
    "api.json": api,
    "alerting.json": alerting,
}
