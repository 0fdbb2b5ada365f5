"""Every metric the bridge exposes, in one place, on a registry per application.

The names are contract: the alert rules in ``prometheus/rules`` use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from passiton_common.admission import THROTTLE_OUTCOMES

EVENT_LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# what one Web Push send came to (bridge.channels.webpush.OUTCOMES, the same names)
WEBPUSH_OUTCOMES = ("sent", "gone", "rate_limited", "retry", "refused", "no_subscription")
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _ThresholdCollector(Collector):
    def __init__(self, source: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "passiton_alert_threshold",
            "Per-organization alert thresholds from alert_configurations.",
            labels=["organization_id", "alertname"],
        )
        for organization_id, alertname, threshold in self.source():
            family.add_metric([organization_id, alertname], threshold)
        yield family


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.notifications_received = Counter(
            "passiton_bridge_notifications_received",
            "Alertmanager notifications received, by outcome "
            "(accepted, invalid, unauthorized, too_large, body_timeout, unavailable, error).",
            ["status"],
            registry=r,
        )
        self.alerts_skipped = Counter(
            "passiton_bridge_alerts_skipped",
            "Alerts left out of their notification for an absurd startsAt (before 2000, over a"
            " year ahead); the rest of the group is stored.",
            registry=r,
        )
        self.alerts_stored = Counter(
            "passiton_bridge_alerts_stored",
            "Alert events (new firing or resolve) stored, by category.",
            ["category"],
            registry=r,
        )
        self.deliveries = Counter(
            "passiton_bridge_deliveries",
            "Delivery attempts by channel and outcome (success, retry, dead).",
            ["channel", "outcome"],
            registry=r,
        )
        self.delivery_duration = Histogram(
            "passiton_bridge_delivery_duration_seconds",
            "Time one channel send took.",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "passiton_bridge_queue_depth", "Deliveries pending in the outbox.", registry=r
        )
        self.queue_oldest_pending = Gauge(
            "passiton_bridge_queue_oldest_pending_seconds",
            "Age of the oldest pending delivery.",
            registry=r,
        )
        self.dead_letters = Counter(
            "passiton_bridge_dead_letters",
            "Deliveries given up (permanent error or past the maximum age).",
            ["channel"],
            registry=r,
        )
        self.suppressed = Counter(
            "passiton_bridge_suppressed",
            "Notifications held back, by reason "
            "(cooldown, flapping, disabled, min_severity, quiet_hours, no_channel, incident,"
            " acknowledged, snoozed).",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "passiton_bridge_rate_limited",
            "Sends refused by a channel's rate limit (HTTP 429 or equivalent).",
            ["channel"],
            registry=r,
        )
        self.watchdog_last_seen = Gauge(
            "passiton_bridge_watchdog_last_seen_timestamp_seconds",
            "When the Watchdog alert last arrived (dead man's switch).",
            registry=r,
        )
        self.reconcile_failures = Counter(
            "passiton_bridge_reconcile_failures",
            "Reads of an Alertmanager's alerts by the reconciler that failed (unreachable, "
            "error status or an unreadable answer).",
            registry=r,
        )
        self.reconcile_last_success = Gauge(
            "passiton_bridge_reconcile_last_success_timestamp_seconds",
            "When the reconciler last read every Alertmanager and applied what they said.",
            registry=r,
        )
        self.reconciled = Counter(
            "passiton_bridge_reconciled",
            "Changes the reconciler made, by kind (vanished, resolved_while_silenced, missed).",
            ["kind"],
            registry=r,
        )
        self.escalation_pages = Counter(
            "passiton_bridge_escalation_pages",
            "People notified by on-call escalation steps, by way (sms, voice, email, slack,"
            " apprise, push).",
            ["via"],
            registry=r,
        )
        self.escalation_events = Counter(
            "passiton_bridge_escalation_events",
            "Escalation steps sent, acknowledgements that expired, snoozes that ended and steps"
            " held by a snooze (step, acknowledgement_expired, snooze_ended, held_by_snooze).",
            ["event"],
            registry=r,
        )
        self.incident_actions = Counter(
            "passiton_bridge_incident_actions",
            "Actions on incidents by people, by action, by how they arrived (console, sms, voice,"
            " slack, email, pagerduty, api, cli, push) and whether they changed anything.",
            ["action", "via", "outcome"],
            registry=r,
        )
        self.public_requests = Counter(
            "passiton_bridge_public_requests",
            "Requests to the bridge's public listener by endpoint and outcome (accepted,"
            " unauthorized, forbidden, replay, invalid, rate_limited, unavailable).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.public_connections_refused = Counter(
            "passiton_bridge_public_connections_refused",
            "Connections to the public listener closed as soon as they were accepted because it"
            " already held BRIDGE_PUBLIC_MAX_CONNECTIONS.",
            registry=r,
        )
        self.public_throttled = Counter(
            "passiton_bridge_public_throttled",
            "Requests to the public listener past BRIDGE_PUBLIC_RATE_PER_SECOND (everyone"
            " together), by outcome: delayed (held until their turn, then served) or shed (their"
            " turn more than BRIDGE_PUBLIC_MAX_WAIT_SECONDS away: answered 503 with Retry-After)."
            " A flood of the public listener (security signal).",
            ["outcome"],
            registry=r,
        )
        self.webpush_sends = Counter(
            "passiton_bridge_webpush_sends",
            "Web Push sends to one browser subscription, by outcome (sent; gone: the push"
            " service answered 404/410 and the subscription was removed; rate_limited: 429;"
            " retry: 5xx or unreachable; refused: another 4xx; no_subscription: a paged user"
            " had no browser subscribed).",
            ["outcome"],
            registry=r,
        )
        # every series of the known label values, at 0 (as exporter/metrics.py's initialise)
        known = (
            (self.public_throttled, "outcome", THROTTLE_OUTCOMES),
            (self.webpush_sends, "outcome", WEBPUSH_OUTCOMES),
            (self.escalation_pages, "via", ("sms", "voice", "email", "slack", "apprise", "push")),
            (
                self.escalation_events,
                "event",
                ("step", "acknowledgement_expired", "snooze_ended", "held_by_snooze"),
            ),
        )
        for metric, label, values in known:
            for value in values:
                metric.labels(**{label: value})
        self.event_loop_lag = Histogram(
            "passiton_event_loop_lag_seconds",
            "How late the event loop ran a callback scheduled for a fixed interval.",
            buckets=EVENT_LOOP_LAG_BUCKETS,
            registry=r,
        )
        self._thresholds: Callable[[], Iterable[tuple[str, str, float]]] = list
        r.register(_ThresholdCollector(lambda: self._thresholds()))

    def thresholds_from(self, source: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        self._thresholds = source
