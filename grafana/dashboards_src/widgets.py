"""The Widgets dashboard: donation widget loads, load, render and script errors and load
performance."""

from __future__ import annotations

from typing import Any

from .panels import ORG, dashboard, dashed, query_variable, row, stat, target, timeseries


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
