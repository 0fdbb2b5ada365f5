"""The Traffic dashboard: requests against the seasonal baseline, bots, countries, sources."""

from __future__ import annotations

from typing import Any

from .panels import ORG, dashboard, dashed, query_variable, target, timeseries


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
