"""The API and uptime dashboard: probes, latency and errors per route, the SLO's burn rate."""

from __future__ import annotations

from typing import Any

from .panels import dashboard, dashed, query_variable, row, stat, target, timeseries

# The API availability objective of prometheus/rules/dashboard.yml: 99.9 %, error budget 0.1 %.
ERROR_BUDGET = 0.001


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
