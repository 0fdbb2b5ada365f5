"""The Grafana dashboards, as code: ``grafana/dashboards/*.json`` is generated from this file.

    python grafana/build_dashboards.py          # rewrite grafana/dashboards/*.json
    python grafana/build_dashboards.py --check  # exit 1 when the JSON differs from this file

Every panel gets a title, a description and a unit, queries the ``${datasource}`` variable, and
takes rates over ``$__rate_interval``. Where ``prometheus/rules/*.yml`` records a series (ratios,
baselines, thresholds, SLO windows) the panels read the recorded series, so a dashboard shows
exactly what the alerts compare.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The API availability objective of prometheus/rules/dashboard.yml: 99.9 %, error budget 0.1 %.
ERROR_BUDGET = 0.001

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


# --- the dashboards ----------------------------------------------------------------------------


def payments() -> dict[str, Any]:
    attempts = f"passiton_payment_attempts_total{{{ORG}}}"
    failures = f"passiton_payment_failures_total{{{ORG}}}"
    panels = [
        stat(
            "Payment attempts",
            "Payment attempts per second of the selected organizations, any outcome.",
            "ops",
            f"sum(rate({attempts}[$__rate_interval]))",
        ),
        stat(
            "Failure ratio (5m)",
            "Share of the selected organizations' payments that failed or timed out over the "
            "last 5 minutes (recorded by the payment rules).",
            "percentunit",
            f"sum(organization:passiton_payment_failures:rate5m{{{ORG}}})"
            f" / sum(organization:passiton_payment_attempts:rate5m{{{ORG}}})",
            thresholds=[(0.1, "orange"), (0.2, "red")],
        ),
        stat(
            "Timeout ratio (5m)",
            "Share of the selected organizations' payments that timed out over the last 5 minutes.",
            "percentunit",
            f"sum(organization:passiton_payment_timeouts:rate5m{{{ORG}}})"
            f" / sum(organization:passiton_payment_attempts:rate5m{{{ORG}}})",
            thresholds=[(0.05, "red")],
        ),
        stat(
            "Stripe signature failures (5m)",
            "Requests to /v1/stripe/webhook whose signature did not verify in the last "
            "5 minutes: a wrong secret, or forged events.",
            "short",
            "platform:passiton_stripe_webhook_signature_failures:increase5m or vector(0)",
            thresholds=[(5, "orange"), (50, "red")],
            decimals=0,
        ),
        row("By organization"),
        timeseries(
            "Failure ratio by organization",
            "Failed and timed-out payments over all attempts in 5 minutes, per organization, "
            "with each organization's alert threshold (dashed; alert_configurations or the "
            "default 20 %).",
            "percentunit",
            target(
                f"organization:passiton_payment_failure_ratio:rate5m{{{ORG}}}",
                "{{organization_id}}",
            ),
            target(
                f"organization:passiton_payment_failure_ratio:threshold{{{ORG}}}",
                "threshold {{organization_id}}",
            ),
            maximum=1,
            overrides=[dashed("threshold .*")],
        ),
        timeseries(
            "Payment attempts by outcome",
            "Payment attempts per second of the selected organizations, stacked by outcome "
            "(succeeded, failed, timeout).",
            "ops",
            target(f"sum by (outcome) (rate({attempts}[$__rate_interval]))", "{{outcome}}"),
            stack=True,
        ),
        timeseries(
            "Timeout ratio by organization",
            "Timed-out payments over all attempts in 5 minutes, per organization, with its "
            "threshold (dashed).",
            "percentunit",
            target(
                f"organization:passiton_payment_timeout_ratio:rate5m{{{ORG}}}",
                "{{organization_id}}",
            ),
            target(
                f"organization:passiton_payment_timeout_ratio:threshold{{{ORG}}}",
                "threshold {{organization_id}}",
            ),
            maximum=1,
            overrides=[dashed("threshold .*")],
        ),
        timeseries(
            "Processing time",
            "Payment processing time where the application reports it, 50th and 95th "
            "percentile by outcome, all organizations.",
            "s",
            target(
                "histogram_quantile(0.95, sum by (le, outcome) "
                "(rate(passiton_payment_processing_duration_seconds_bucket[$__rate_interval])))",
                "p95 {{outcome}}",
            ),
            target(
                "histogram_quantile(0.5, sum by (le, outcome) "
                "(rate(passiton_payment_processing_duration_seconds_bucket[$__rate_interval])))",
                "p50 {{outcome}}",
            ),
        ),
        row("Declines and failures"),
        timeseries(
            "Declines by decline code",
            "Failed payments per second of the selected organizations by Stripe decline code.",
            "ops",
            target(
                f"sum by (decline_code) (rate(passiton_payment_failures_total{{{ORG}, "
                f'decline_code!="none"}}[$__rate_interval]))',
                "{{decline_code}}",
            ),
            stack=True,
        ),
        timeseries(
            "Failures by class",
            "Failed payments per second by failure class: card declines versus processing, "
            "network, rate-limit, configuration and timeout errors.",
            "ops",
            target(
                f"sum by (failure_class) (rate({failures}[$__rate_interval]))",
                "{{failure_class}}",
            ),
            stack=True,
        ),
        timeseries(
            "Decline code share against its baseline",
            "Each decline code's share of all declines over 30 minutes, and (dashed) its share "
            "over the previous day: the comparison behind PaymentDeclineCodeSurge.",
            "percentunit",
            target("decline_code:passiton_payment_decline_share:ratio30m", "{{decline_code}}"),
            target(
                "decline_code:passiton_payment_decline_share:ratio30m_baseline1d",
                "baseline {{decline_code}}",
            ),
            maximum=1,
            overrides=[dashed("baseline .*")],
        ),
        timeseries(
            "Failed amount per hour by currency",
            "Money at risk: the amount of failed payments per hour, in major units of each "
            "currency, all organizations.",
            "short",
            target(
                "sum by (currency) "
                "(rate(passiton_payment_failed_amount_total[$__rate_interval])) * 3600",
                "{{currency}}",
            ),
        ),
        row("Stripe webhooks"),
        timeseries(
            "Stripe events by type",
            "Verified Stripe events per second received at /v1/stripe/webhook, by event type.",
            "ops",
            target(
                "sum by (event_type) "
                "(rate(passiton_stripe_webhook_events_total[$__rate_interval]))",
                "{{event_type}}",
            ),
            stack=True,
        ),
        timeseries(
            "Stripe webhook problems",
            "Per second: signature failures by reason, duplicate events ignored, and failures "
            "of the application's own webhook handler by event type.",
            "ops",
            target(
                "sum by (reason) "
                "(rate(passiton_stripe_webhook_signature_failures_total[$__rate_interval]))",
                "bad signature: {{reason}}",
            ),
            target(
                "sum(rate(passiton_stripe_webhook_duplicate_events_total[$__rate_interval]))",
                "duplicates",
            ),
            target(
                "sum by (event_type) "
                "(rate(passiton_stripe_webhook_handler_failures_total[$__rate_interval]))",
                "handler failed: {{event_type}}",
            ),
        ),
    ]
    return dashboard(
        "passiton-payments",
        "PassItOn / Payments",
        "Payment attempts, failures, declines, timeouts and Stripe webhooks per organization.",
        panels,
        [
            query_variable(
                "organization",
                "Organization",
                "label_values(passiton_payment_attempts_total, organization_id)",
            )
        ],
    )


def widgets() -> dict[str, Any]:
    selected = f'{ORG}, widget_id=~"$widget"'
    panels = [
        stat(
            "Widget loads",
            "Successful widget loads per second of the selected organizations and widgets.",
            "ops",
            f"sum(rate(passiton_widget_loads_total{{{selected}}}[$__rate_interval]))",
        ),
        stat(
            "Load error ratio (5m)",
            "Load errors over load attempts in the last 5 minutes, selected organizations.",
            "percentunit",
            f"sum(organization:passiton_widget_load_errors:rate5m{{{ORG}}})"
            f" / sum(organization:passiton_widget_load_attempts:rate5m{{{ORG}}})",
            thresholds=[(0.05, "orange"), (0.1, "red")],
        ),
        stat(
            "Organizations with failing widgets",
            "Share of organizations with widget traffic whose widgets mostly fail (load or "
            "render errors on more than half of the attempts, 5 minutes).",
            "percentunit",
            "platform:passiton_widget_failing_organizations:ratio5m",
            thresholds=[(0.2, "orange"), (0.5, "red")],
        ),
        stat(
            "Failing widgets",
            "Number of widgets failing on more than half of their load attempts (5 minutes).",
            "short",
            "platform:passiton_widget_failing_widgets:count5m",
            thresholds=[(1, "orange"), (5, "red")],
            decimals=0,
        ),
        row("Loads and errors"),
        timeseries(
            "Loads by widget",
            "Successful loads per second by organization and widget.",
            "ops",
            target(
                f"sum by (organization_id, widget_id) "
                f"(rate(passiton_widget_loads_total{{{selected}}}[$__rate_interval]))",
                "{{organization_id}} / {{widget_id}}",
            ),
            stack=True,
        ),
        timeseries(
            "Errors by kind",
            "Widget errors per second by kind: load (the widget did not load), render and "
            "script errors.",
            "ops",
            target(
                f"sum by (kind) "
                f"(rate(passiton_widget_errors_total{{{selected}}}[$__rate_interval]))",
                "{{kind}}",
            ),
            stack=True,
        ),
        timeseries(
            "Load error ratio by organization",
            "Load errors over load attempts in 5 minutes, per organization, with its threshold "
            "(dashed).",
            "percentunit",
            target(
                f"organization:passiton_widget_load_error_ratio:rate5m{{{ORG}}}",
                "{{organization_id}}",
            ),
            target(
                f"organization:passiton_widget_load_error_ratio:threshold{{{ORG}}}",
                "threshold {{organization_id}}",
            ),
            maximum=1,
            overrides=[dashed("threshold .*")],
        ),
        timeseries(
            "Failure ratio by widget",
            "Load and render errors over load attempts in 5 minutes, per widget.",
            "percentunit",
            target(
                f"organization_widget:passiton_widget_failure_ratio:rate5m{{{selected}}}",
                "{{organization_id}} / {{widget_id}}",
            ),
            maximum=1,
        ),
        timeseries(
            "Render error ratio",
            "Render errors over successful loads in 10 minutes, per organization.",
            "percentunit",
            target(
                f"organization:passiton_widget_render_error_ratio:rate10m{{{ORG}}}",
                "{{organization_id}}",
            ),
            maximum=1,
        ),
        timeseries(
            "Script errors against the previous two hours",
            "Script errors per second over 5 minutes, per organization, and (dashed) their median "
            "over the two hours before: the comparison behind the script-error spike alert.",
            "ops",
            target(
                f"organization:passiton_widget_script_errors:rate5m{{{ORG}}}",
                "{{organization_id}}",
            ),
            target(
                f"organization:passiton_widget_script_errors:rate5m_baseline2h{{{ORG}}}",
                "baseline {{organization_id}}",
            ),
            overrides=[dashed("baseline .*")],
        ),
        row("Performance"),
        timeseries(
            "Load time",
            "Widget load time of the selected organizations, 50th and 95th percentile.",
            "s",
            target(
                f"histogram_quantile(0.95, sum by (le) "
                f"(rate(passiton_widget_load_duration_seconds_bucket{{{ORG}}}[$__rate_interval])))",
                "p95",
            ),
            target(
                f"histogram_quantile(0.5, sum by (le) "
                f"(rate(passiton_widget_load_duration_seconds_bucket{{{ORG}}}[$__rate_interval])))",
                "p50",
            ),
        ),
        timeseries(
            "Slow loads",
            "Share of loads slower than the performance-timeout threshold "
            "(WIDGET_TIMEOUT_SECONDS) over 10 minutes, per organization, with its threshold "
            "(dashed).",
            "percentunit",
            target(
                f"organization:passiton_widget_slow_load_ratio:rate10m{{{ORG}}}",
                "{{organization_id}}",
            ),
            target(
                f"organization:passiton_widget_slow_load_ratio:threshold{{{ORG}}}",
                "threshold {{organization_id}}",
            ),
            maximum=1,
            overrides=[dashed("threshold .*")],
        ),
    ]
    return dashboard(
        "passiton-widgets",
        "PassItOn / Widgets",
        "Donation widget loads, load/render/script errors and load performance.",
        panels,
        [
            query_variable(
                "organization",
                "Organization",
                "label_values(passiton_widget_loads_total, organization_id)",
            ),
            query_variable(
                "widget",
                "Widget",
                f"label_values(passiton_widget_loads_total{{{ORG}}}, widget_id)",
            ),
        ],
    )


def traffic() -> dict[str, Any]:
    mean = f"organization:passiton_traffic_requests:baseline_mean{{{ORG}}}"
    stddev = f"organization:passiton_traffic_requests:baseline_stddev{{{ORG}}}"
    requests = f"passiton_traffic_requests_total{{{ORG}}}"
    panels = [
        timeseries(
            "Requests against the seasonal baseline: $organization",
            "Requests per second over 5 minutes, with the baseline the traffic alerts use: the "
            "same hour of up to four previous weeks (or six previous days), its mean (dashed) "
            "and a band of two standard deviations. No band until three days of history exist.",
            "reqps",
            target(f"organization:passiton_traffic_requests:rate5m{{{ORG}}}", "requests"),
            target(mean, "baseline"),
            target(f"{mean} + 2 * {stddev}", "upper"),
            target(f"clamp_min({mean} - 2 * {stddev}, 0)", "lower"),
            overrides=[
                dashed("baseline"),
                {
                    "matcher": {"id": "byName", "options": "upper"},
                    "properties": [
                        {"id": "custom.fillBelowTo", "value": "lower"},
                        {"id": "custom.fillOpacity", "value": 15},
                        {"id": "custom.lineWidth", "value": 0},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "blue"}},
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "lower"},
                    "properties": [
                        {"id": "custom.lineWidth", "value": 0},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "blue"}},
                    ],
                },
            ],
            repeat="organization",
        ),
        timeseries(
            "Deviation from the baseline",
            "Current traffic in standard deviations from the seasonal baseline (z-score); "
            "the spike and drop alerts fire beyond their limits (red).",
            "short",
            target(
                f"organization:passiton_traffic_requests:rate5m_zscore{{{ORG}}}",
                "{{organization_id}}",
            ),
            minimum=None,
            thresholds=[(3, "red")],
        ),
        timeseries(
            "Requests by client class",
            "Requests per second by client class: human, declared bot, and suspicious "
            "(automation tools, scanners, empty user agents).",
            "reqps",
            target(f"sum by (client) (rate({requests}[$__rate_interval]))", "{{client}}"),
            stack=True,
        ),
        timeseries(
            "Bot share",
            "Share of declared bots in each organization's traffic over 5 minutes, with its "
            "threshold (dashed; by default its share over the previous day plus 25 points).",
            "percentunit",
            target(
                f"organization:passiton_traffic_bot_share:ratio5m{{{ORG}}}", "{{organization_id}}"
            ),
            target(
                f"organization:passiton_traffic_bot_share:threshold{{{ORG}}}",
                "threshold {{organization_id}}",
            ),
            maximum=1,
            overrides=[dashed("threshold .*")],
        ),
        timeseries(
            "Top countries",
            "Requests per second from the ten busiest countries (ISO 3166-1 codes; unknown "
            "when the application sends none).",
            "reqps",
            target(
                f"topk(10, sum by (country) (rate({requests}[$__rate_interval])))", "{{country}}"
            ),
            stack=True,
        ),
        timeseries(
            "Country share against yesterday and last week",
            "Each country's share of all traffic over 5 minutes and (dashed) in the same hour "
            "yesterday and a week ago, for the five largest shares: the comparison behind the "
            "geographic anomaly alert.",
            "percentunit",
            target("topk(5, country:passiton_traffic_requests:share5m)", "{{country}}"),
            target(
                "country:passiton_traffic_requests:share_baseline"
                " and on (country) topk(5, country:passiton_traffic_requests:share5m)",
                "baseline {{country}}",
            ),
            maximum=1,
            overrides=[dashed("baseline .*")],
        ),
        timeseries(
            "Source concentration",
            "Share of the sliding window's requests sent by the ten heaviest source addresses "
            "(addresses are never stored; the exporter keeps a keyed-hash summary).",
            "percentunit",
            target("max(passiton_traffic_top_sources_ratio)", "top 10 sources"),
            maximum=1,
        ),
        timeseries(
            "Distinct sources",
            "Estimated number of distinct source addresses in the sliding window, summed over "
            "exporter replicas (HyperLogLog, about 2 % error; docs/scaling.md on replicas).",
            "short",
            target("sum(passiton_traffic_distinct_sources)", "distinct sources"),
        ),
    ]
    return dashboard(
        "passiton-traffic",
        "PassItOn / Traffic",
        "Organization traffic against its seasonal baseline, bots, countries and source "
        "concentration.",
        panels,
        [
            query_variable(
                "organization",
                "Organization",
                "label_values(passiton_traffic_requests_total, organization_id)",
            )
        ],
    )


def api() -> dict[str, Any]:
    route = 'route=~"$route"'
    count = "passiton_endpoint_request_duration_seconds_count"
    bucket = "passiton_endpoint_request_duration_seconds_bucket"
    all_by_route = f"sum by (route) (rate({count}{{{route}}}[$__rate_interval]))"
    burn = {
        "5m": "platform:passiton_endpoint_error_ratio:rate5m",
        "30m": "platform:passiton_endpoint_error_ratio:rate30m",
        "1h": "platform:passiton_endpoint_error_ratio:rate1h",
        "6h": "platform:passiton_endpoint_error_ratio:rate6h",
        "1d": "platform:passiton_endpoint_error_ratio:rate1d",
        "3d": "platform:passiton_endpoint_error_ratio:rate3d",
    }
    panels = [
        stat(
            "Uptime",
            "Share of successful blackbox probes over the dashboard's time range, per probed "
            "service.",
            "percentunit",
            'avg by (service) (avg_over_time(probe_success{job="passiton-uptime"}[$__range]))',
            legend="{{service}}",
            thresholds=[(0.999, "green")],
            decimals=2,
        ),
        stat(
            "Error budget left (30 days)",
            "Share of the 30-day error budget of the API availability objective (99.9 % of "
            "requests without a 5xx) that is not spent yet.",
            "percentunit",
            "1 - (sum_over_time(platform:passiton_endpoint_errors:rate5m[30d])"
            " / sum_over_time(platform:passiton_endpoint_requests:rate5m[30d]))"
            f" / {ERROR_BUDGET}",
            thresholds=[(0.25, "orange"), (0.5, "green")],
        ),
        stat(
            "Burn rate (1h)",
            "How fast the error budget burns over the last hour: 1 spends exactly the budget in "
            "30 days; the paging alert fires at 14.4.",
            "short",
            f"{burn['1h']} / {ERROR_BUDGET}",
            thresholds=[(1, "orange"), (14.4, "red")],
            decimals=1,
        ),
        stat(
            "Database probe",
            "1 when the last SELECT 1 probe of the platform database succeeded within the last "
            "minute.",
            "bool_on_off",
            "platform:passiton_database_probe_up:max1m",
        ),
        row("Uptime"),
        timeseries(
            "Probe success",
            "Share of successful blackbox probes per probed URL.",
            "percentunit",
            target(
                'avg by (instance) (avg_over_time(probe_success{job="passiton-uptime"}'
                "[$__rate_interval]))",
                "{{instance}}",
            ),
            maximum=1,
        ),
        timeseries(
            "Probe duration",
            "Time the blackbox exporter took to probe each URL.",
            "s",
            target('probe_duration_seconds{job="passiton-uptime"}', "{{instance}}"),
        ),
        row("Latency and errors"),
        timeseries(
            "Requests by route",
            "Platform API requests per second by route template.",
            "reqps",
            target(f"sum by (route) (rate({count}{{{route}}}[$__rate_interval]))", "{{route}}"),
            stack=True,
        ),
        timeseries(
            "Latency p95 by route",
            "95th percentile response time per route; the objective is 1 s (red).",
            "s",
            target(
                f"histogram_quantile(0.95, sum by (route, le) "
                f"(rate({bucket}{{{route}}}[$__rate_interval])))",
                "{{route}}",
            ),
            thresholds=[(1, "red")],
        ),
        timeseries(
            "Error ratio by route",
            "Share of requests answered with a 5xx, per route.",
            "percentunit",
            target(
                f'(sum by (route) (rate({count}{{{route}, status_class="5xx"}}[$__rate_interval]))'
                f" or 0 * {all_by_route}) / {all_by_route}",
                "{{route}}",
            ),
            maximum=1,
        ),
        timeseries(
            "Responses by status class",
            "Platform API responses per second by status class.",
            "reqps",
            target(
                f"sum by (status_class) (rate({count}{{{route}}}[$__rate_interval]))",
                "{{status_class}}",
            ),
            stack=True,
        ),
        row("SLO"),
        timeseries(
            "Error budget burn rate",
            "The API's 5xx ratio over each alert window divided by the error budget (0.1 %). "
            "Pages when both 1h and 5m exceed 14.4 or both 6h and 30m exceed 6; tickets at 3 "
            "(1d) and 1 (3d).",
            "short",
            *(target(f"{expr} / {ERROR_BUDGET}", window) for window, expr in burn.items()),
            thresholds=[(1, "orange"), (6, "red"), (14.4, "purple")],
            width=24,
        ),
        row("Authentication and database"),
        timeseries(
            "Authentication failures",
            "Authentication failures per second by reason, and (dashed) the platform rate of "
            "the previous hour: the comparison behind the auth-failure spike alert.",
            "ops",
            target(
                "sum by (reason) (rate(passiton_auth_failures_total[$__rate_interval]))",
                "{{reason}}",
            ),
            target("platform:passiton_auth_failures:rate5m_baseline1h", "baseline (all)"),
            overrides=[dashed("baseline .*")],
        ),
        timeseries(
            "Database errors",
            "Database errors reported by the platform per second, by operation.",
            "ops",
            target(
                "sum by (operation) (rate(passiton_database_errors_total[$__rate_interval]))",
                "{{operation}}",
            ),
            stack=True,
        ),
        timeseries(
            "Database probe duration",
            "Duration of the exporter's SELECT 1 probe of the platform database.",
            "s",
            target("max(passiton_database_probe_duration_seconds)", "probe"),
        ),
    ]
    return dashboard(
        "passiton-api",
        "PassItOn / API and uptime",
        "Uptime probes, API latency and errors per route, the availability SLO's burn rate, "
        "authentication failures and database health.",
        panels,
        [query_variable("route", "Route", f"label_values({count}, route)")],
    )


def alerting() -> dict[str, Any]:
    channel = 'channel=~"$channel"'
    panels = [
        stat(
            "Firing alerts",
            "Alerts firing in Prometheus right now.",
            "short",
            'count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)',
            thresholds=[(1, "orange")],
            decimals=0,
        ),
        stat(
            "Deliveries pending",
            "Deliveries waiting in the bridge's outbox (all bridge replicas share it).",
            "short",
            "max(passiton_bridge_queue_depth)",
            thresholds=[(10, "orange"), (100, "red")],
            decimals=0,
        ),
        stat(
            "Oldest pending delivery",
            "Age of the oldest delivery still waiting in the outbox.",
            "s",
            "max(passiton_bridge_queue_oldest_pending_seconds)",
            thresholds=[(60, "orange"), (600, "red")],
        ),
        stat(
            "Since the last Watchdog",
            "Time since the always-firing Watchdog alert last reached the bridge (the dead "
            "man's switch notifies when it stays away).",
            "s",
            "time() - max(passiton_bridge_watchdog_last_seen_timestamp_seconds > 0)",
            thresholds=[(300, "orange"), (600, "red")],
        ),
        row("Prometheus and Alertmanager"),
        timeseries(
            "Firing alerts by severity",
            "Alerts firing in Prometheus, by severity.",
            "short",
            target('sum by (severity) (ALERTS{alertstate="firing"})', "{{severity}}"),
            stack=True,
        ),
        timeseries(
            "Firing alerts by category",
            "Alerts firing in Prometheus, by category (the bridge's alert table).",
            "short",
            target('sum by (category) (ALERTS{alertstate="firing"})', "{{category}}"),
            stack=True,
        ),
        timeseries(
            "Alertmanager notifications",
            "Notifications Alertmanager sent per second by integration, and the failed ones "
            "(the bridge answering 5xx or unreachable).",
            "ops",
            target(
                "sum by (integration) (rate(alertmanager_notifications_total[$__rate_interval]))",
                "sent {{integration}}",
            ),
            target(
                "sum by (integration) "
                "(rate(alertmanager_notifications_failed_total[$__rate_interval]))",
                "failed {{integration}}",
            ),
        ),
        timeseries(
            "Notifications received by the bridge",
            "Alertmanager notifications reaching the bridge per second, by outcome (accepted, "
            "invalid, unauthorized, too_large, unavailable, error).",
            "ops",
            target(
                "sum by (status) "
                "(rate(passiton_bridge_notifications_received_total[$__rate_interval]))",
                "{{status}}",
            ),
            stack=True,
        ),
        row("Deliveries"),
        timeseries(
            "Deliveries by channel and outcome",
            "Delivery attempts per second by channel and outcome (success, retry, dead).",
            "ops",
            target(
                f"sum by (channel, outcome) "
                f"(rate(passiton_bridge_deliveries_total{{{channel}}}[$__rate_interval]))",
                "{{channel}} {{outcome}}",
            ),
        ),
        timeseries(
            "Delivery time p95",
            "95th percentile of the time one send took, per channel.",
            "s",
            target(
                f"histogram_quantile(0.95, sum by (channel, le) (rate("
                f"passiton_bridge_delivery_duration_seconds_bucket{{{channel}}}[$__rate_interval])))",
                "{{channel}}",
            ),
        ),
        timeseries(
            "Outbox depth",
            "Deliveries pending in the outbox.",
            "short",
            target("max(passiton_bridge_queue_depth)", "pending"),
        ),
        timeseries(
            "Oldest pending delivery",
            "Age of the oldest pending delivery; it grows while a channel is down and retries "
            "back off.",
            "s",
            target("max(passiton_bridge_queue_oldest_pending_seconds)", "oldest"),
        ),
        timeseries(
            "Dead letters",
            "Deliveries given up per channel (permanent error or past the maximum age).",
            "short",
            target(
                f"sum by (channel) "
                f"(increase(passiton_bridge_dead_letters_total{{{channel}}}[$__rate_interval]))",
                "{{channel}}",
            ),
        ),
        timeseries(
            "Held back and rate-limited",
            "Notifications held back by the alert-fatigue rules per second, by reason, and "
            "sends refused by a channel's rate limit.",
            "ops",
            target(
                "sum by (reason) (rate(passiton_bridge_suppressed_total[$__rate_interval]))",
                "held back: {{reason}}",
            ),
            target(
                f"sum by (channel) "
                f"(rate(passiton_bridge_rate_limited_total{{{channel}}}[$__rate_interval]))",
                "rate-limited: {{channel}}",
            ),
        ),
        row("The monitoring itself"),
        timeseries(
            "Scrape targets up",
            "1 for every target Prometheus scraped successfully last time.",
            "short",
            target("up", "{{job}} {{instance}}"),
            maximum=1,
        ),
        timeseries(
            "Exporter events",
            "Events accepted per second by type, and rejected ones by reason.",
            "ops",
            target(
                "sum by (type) (rate(passiton_exporter_events_accepted_total[$__rate_interval]))",
                "accepted {{type}}",
            ),
            target(
                "sum by (reason) (rate(passiton_exporter_events_rejected_total[$__rate_interval]))",
                "rejected {{reason}}",
            ),
        ),
    ]
    return dashboard(
        "passiton-alerting",
        "PassItOn / Alerting pipeline",
        "Alerts firing, Alertmanager's notifications, the bridge's deliveries, outbox and dead "
        "letters, and the health of the monitoring itself.",
        panels,
        [
            query_variable(
                "channel", "Channel", "label_values(passiton_bridge_deliveries_total, channel)"
            )
        ],
        time_from="now-3h",
    )


DASHBOARDS = {
    "payments.json": payments,
    "widgets.json": widgets,
    "traffic.json": traffic,
    "api.json": api,
    "alerting.json": alerting,
}


def render() -> dict[str, str]:
    """Each dashboard file name and its JSON text."""
    return {
        name: json.dumps(build(), indent=2, sort_keys=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def stale(out_dir: Path = OUT_DIR) -> list[str]:
    expected = render()
    present = {p.name for p in out_dir.glob("*.json")}
    changed = [
        name
        for name, text in expected.items()
        if not (out_dir / name).exists() or (out_dir / name).read_text(encoding="utf-8") != text
    ]
    return sorted(changed + sorted(present - set(expected)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate grafana/dashboards/*.json.")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"grafana/dashboards/{name} is out of date", file=sys.stderr)
        return 1 if names else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote grafana/dashboards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
