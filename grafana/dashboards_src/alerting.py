"""The Alerting pipeline dashboard: Alertmanager, the bridge's deliveries, outbox and dead
letters."""

from __future__ import annotations

from typing import Any

from .panels import dashboard, query_variable, row, stat, target, timeseries


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
