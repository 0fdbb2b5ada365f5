"""Every metric the exporter exposes: name, help text, unit and label set, in one place.

Each application gets its own registry (``ExporterMetrics(registry)``), so tests can build
several apps side by side. Label values reach these metrics only through ``exporter.labels``,
which bounds them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from passiton_common.admission import THROTTLE_OUTCOMES

# Widget load buckets; the performance-timeout threshold is added to these at start-up.
WIDGET_LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0)
PAYMENT_DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
ENDPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EVENT_LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INGEST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)

# Label values known in advance of counters the alert rules read with increase() or rate(): each
# series exists at 0 from start-up, so the first increase after a restart is seen (increase() of
# a series born at 1 is 0, and a missing series is no sample at all).
SIGNATURE_FAILURE_REASONS = (
    "missing_header",
    "malformed_header",
    "timestamp_outside_tolerance",
    "no_matching_signature",
    "invalid_payload",
)
BEACON_KEY_REJECTION_REASONS = ("missing_key", "malformed_key", "forged_key", "key_mismatch")
BEACON_RATE_LIMITS = ("client", "key")
WIDGET_ERROR_CHANNELS = ("events", "beacon")
CAPPED_LISTENERS = ("public",)
# what the public listener's global admission rate did with a request past it
# outcomes of passiton_payments_total: every one is created at 0 with an organization's first
# payment, so the first decline of an organization shows in increase()
PAYMENT_OUTCOMES = ("succeeded", "declined", "failed", "timeout")
# decline codes of passiton_payment_declines_total created at 0 with an organization's first
# payment (so that their first decline shows in increase()): the codes most declines carry, and
# card testing's; a rarer code's series starts at its first decline
COMMON_DECLINE_CODES = (
    "generic_decline",
    "insufficient_funds",
    "do_not_honor",
    "incorrect_cvc",
    "incorrect_number",
    "expired_card",
    "lost_card",
    "stolen_card",
    "fraudulent",
    "card_velocity_exceeded",
    "transaction_not_allowed",
    "pickup_card",
)
BOUNDED_LABELS = (
    "organization_id",
    "widget_organization_id",
    "widget_id",
    "route",
    "provider",
    "event_type",
    "reason",
    "operation",
)


@dataclass(frozen=True)
class ExporterMetrics:
    # payments
    payment_attempts: Counter
    payments: Counter
    payment_small_declines: Counter
    payment_declines: Counter
    payment_failures: Counter
    payment_failed_amount: Counter
    payment_timeouts: Counter
    payment_failure_streak: Gauge
    payment_duration: Histogram
    stripe_events: Counter
    stripe_duplicate_events: Counter
    stripe_signature_failures: Counter
    stripe_webhook_handler_failures: Counter
    stripe_rate_limited: Counter
    # widgets
    widget_loads: Counter
    widget_errors: Counter
    widget_load_duration: Histogram
    # traffic
    traffic_requests: Counter
    traffic_window_requests: Gauge
    traffic_top_sources_ratio: Gauge
    traffic_distinct_sources: Gauge
    # endpoints and the dashboard
    endpoint_duration: Histogram
    auth_failures: Counter
    database_errors: Counter
    database_probe_up: Gauge
    database_probe_duration: Gauge
    # the exporter itself
    events_accepted: Counter
    events_rejected: Counter
    label_overflow: Counter
    label_values: Gauge
    ingest_duration: Histogram
    beacon_rate_limited: Counter
    # the public edge
    beacon_key_rejections: Counter
    widget_error_reports: Counter
    widget_failure_sources: Gauge
    widget_failure_organization_sources: Gauge
    body_timeouts: Counter
    connections_refused: Counter
    public_throttled: Counter
    label_expired: Counter
    series_budget_overflow: Counter
    event_loop_lag: Histogram
    # False when PROBE_DATABASE_URL is not set: the probe gauges are then neither registered nor
    # rendered, so an unconfigured probe says nothing instead of "down" (0).
    database_probe_enabled: bool = True

    def initialise(self) -> None:
        """Every series of the known label values above, at 0."""
        known = (
            (self.stripe_signature_failures, "reason", SIGNATURE_FAILURE_REASONS),
            (self.beacon_key_rejections, "reason", BEACON_KEY_REJECTION_REASONS),
            (self.beacon_rate_limited, "limit", BEACON_RATE_LIMITS),
            (self.widget_error_reports, "channel", WIDGET_ERROR_CHANNELS),
            (self.label_overflow, "label", BOUNDED_LABELS),
            (self.connections_refused, "listener", CAPPED_LISTENERS),
            (self.public_throttled, "outcome", THROTTLE_OUTCOMES),
        )
        for metric, label, values in known:
            for value in values:
                metric.labels(**{label: value})

    def all(self) -> list[MetricWrapperBase]:
        probe = {"database_probe_up", "database_probe_duration"}
        return [
            getattr(self, f.name)
            for f in fields(self)
            if f.name != "database_probe_enabled"
            and (self.database_probe_enabled or f.name not in probe)
        ]

    @classmethod
    def create(
        cls,
        registry: CollectorRegistry,
        widget_timeout_seconds: float = 5.0,
        database_probe: bool = True,
    ) -> ExporterMetrics:
        """The exporter's metrics in ``registry``; the database probe's gauges only with
        ``database_probe`` (PROBE_DATABASE_URL set)."""
        r = registry
        probe_registry = registry if database_probe else None
        widget_buckets = tuple(sorted({*WIDGET_LOAD_BUCKETS, float(widget_timeout_seconds)}))
        metrics = cls(
            payment_attempts=Counter(
                "passiton_payment_attempts",
                "Payment attempts by organization and outcome (succeeded, failed, timeout).",
                ["organization_id", "outcome"],
                registry=r,
            ),
            payments=Counter(
                "passiton_payments",
                "Payments by organization and outcome (succeeded, declined by the card, failed "
                "otherwise, timeout), a payment's retries counted once: a failure of a payment_id "
                "that failed within the last 10 minutes is not counted again.",
                ["organization_id", "outcome"],
                registry=r,
            ),
            payment_small_declines=Counter(
                "passiton_payment_small_declines",
                "Payments declined by the card for less than 5 units of their currency, a "
                "payment's retries counted once: what card testing tries stolen cards with.",
                ["organization_id"],
                registry=r,
            ),
            payment_declines=Counter(
                "passiton_payment_declines",
                "Payments declined by the card, by organization and Stripe decline code, a "
                "payment's retries counted once (under the code of its first decline): what the "
                "decline-surge rules test code by code.",
                ["organization_id", "decline_code"],
                registry=r,
            ),
            payment_failures=Counter(
                "passiton_payment_failures",
                "Failed payments by organization, Stripe decline code and failure class.",
                ["organization_id", "decline_code", "failure_class"],
                registry=r,
            ),
            payment_failed_amount=Counter(
                "passiton_payment_failed_amount",
                "Money at risk: amount of failed payments in major units of the currency.",
                ["currency"],
                registry=r,
            ),
            payment_timeouts=Counter(
                "passiton_payment_timeouts",
                "Payments that timed out, by organization and payment provider.",
                ["organization_id", "provider"],
                registry=r,
            ),
            payment_failure_streak=Gauge(
                "passiton_payment_consecutive_failures",
                "Payments of the organization that failed or timed out in a row since its last "
                "successful one, not counting declines caused by the card.",
                ["organization_id"],
                registry=r,
            ),
            payment_duration=Histogram(
                "passiton_payment_processing_duration_seconds",
                "Payment processing duration where the application reports it.",
                ["outcome"],
                buckets=PAYMENT_DURATION_BUCKETS,
                registry=r,
            ),
            stripe_events=Counter(
                "passiton_stripe_webhook_events",
                "Stripe events received and verified at /v1/stripe/webhook, by Stripe event type.",
                ["event_type"],
                registry=r,
            ),
            stripe_duplicate_events=Counter(
                "passiton_stripe_webhook_duplicate_events",
                "Stripe events ignored because their event id was already seen.",
                registry=r,
            ),
            stripe_signature_failures=Counter(
                "passiton_stripe_webhook_signature_failures",
                "Requests to /v1/stripe/webhook whose signature did not verify (security signal).",
                ["reason"],
                registry=r,
            ),
            stripe_webhook_handler_failures=Counter(
                "passiton_stripe_webhook_handler_failures",
                "The application's own Stripe webhook handler failing, by event type and reason.",
                ["event_type", "reason"],
                registry=r,
            ),
            stripe_rate_limited=Counter(
                "passiton_exporter_stripe_rate_limited",
                "Requests to /v1/stripe/webhook refused (429) by the per-client rate limit, before "
                "their body was read or their signature checked.",
                registry=r,
            ),
            widget_loads=Counter(
                "passiton_widget_loads",
                "Successful widget loads by organization and widget.",
                ["organization_id", "widget_id"],
                registry=r,
            ),
            widget_errors=Counter(
                "passiton_widget_errors",
                "Widget errors by organization, widget and kind (load, render, script).",
                ["organization_id", "widget_id", "kind"],
                registry=r,
            ),
            widget_load_duration=Histogram(
                "passiton_widget_load_duration_seconds",
                "Widget load duration; one bucket boundary is the performance-timeout threshold.",
                ["organization_id"],
                buckets=widget_buckets,
                registry=r,
            ),
            traffic_requests=Counter(
                "passiton_traffic_requests",
                "Page requests by organization, country (ISO 3166-1 alpha-2) and client class.",
                ["organization_id", "country", "client"],
                registry=r,
            ),
            traffic_window_requests=Gauge(
                "passiton_traffic_window_requests",
                "Requests with a known source address seen in the sliding source window.",
                registry=r,
            ),
            traffic_top_sources_ratio=Gauge(
                "passiton_traffic_top_sources_ratio",
                "Share of the window's requests sent by the heaviest sources (top N).",
                registry=r,
            ),
            traffic_distinct_sources=Gauge(
                "passiton_traffic_distinct_sources",
                "Estimated number of distinct source addresses in the sliding window.",
                registry=r,
            ),
            endpoint_duration=Histogram(
                "passiton_endpoint_request_duration_seconds",
                "Platform API request duration by route template, method and status class.",
                ["route", "method", "status_class"],
                buckets=ENDPOINT_BUCKETS,
                registry=r,
            ),
            auth_failures=Counter(
                "passiton_auth_failures",
                "Authentication failures on the platform by reason.",
                ["reason"],
                registry=r,
            ),
            database_errors=Counter(
                "passiton_database_errors",
                "Database errors reported by the platform, by operation.",
                ["operation"],
                registry=r,
            ),
            database_probe_up=Gauge(
                "passiton_database_probe_up",
                "1 when the last SELECT 1 probe of PROBE_DATABASE_URL succeeded, else 0 "
                "(absent when PROBE_DATABASE_URL is not set).",
                registry=probe_registry,
            ),
            database_probe_duration=Gauge(
                "passiton_database_probe_duration_seconds",
                "Duration of the last database probe.",
                registry=probe_registry,
            ),
            events_accepted=Counter(
                "passiton_exporter_events_accepted",
                "Events accepted by type.",
                ["type"],
                registry=r,
            ),
            events_rejected=Counter(
                "passiton_exporter_events_rejected",
                "Events rejected by type and reason.",
                ["type", "reason"],
                registry=r,
            ),
            label_overflow=Counter(
                "passiton_exporter_label_overflow",
                "Label values folded into 'other' because the label reached its bound.",
                ["label"],
                registry=r,
            ),
            label_values=Gauge(
                "passiton_exporter_label_values",
                "Distinct values currently admitted per bounded label.",
                ["label"],
                registry=r,
            ),
            ingest_duration=Histogram(
                "passiton_exporter_ingest_duration_seconds",
                "Time to validate and record one request's events, by endpoint.",
                ["endpoint"],
                buckets=INGEST_BUCKETS,
                registry=r,
            ),
            beacon_rate_limited=Counter(
                "passiton_exporter_beacon_rate_limited",
                "Beacon requests refused by a rate limit: per client address or per widget key.",
                ["limit"],
                registry=r,
            ),
            beacon_key_rejections=Counter(
                "passiton_exporter_beacon_key_rejections",
                "Beacons refused for their key: missing, malformed, forged, or events of another "
                "widget (security signal; the claimed ids never become label values).",
                ["reason"],
                registry=r,
            ),
            widget_error_reports=Counter(
                "passiton_widget_error_reports",
                "Widget error events accepted, by channel: beacon (browsers) or events (the "
                "authenticated events API).",
                ["channel"],
                registry=r,
            ),
            widget_failure_sources=Gauge(
                "passiton_widget_failure_distinct_sources",
                "Estimated number of distinct client addresses that sent widget errors through "
                "the beacon in the sliding source window.",
                registry=r,
            ),
            widget_failure_organization_sources=Gauge(
                "passiton_widget_failure_organization_sources",
                "Distinct client networks (IPv4 address, IPv6 /64) that sent widget errors of the "
                "organization through the beacon in the last 5 minutes, counted up to 32: "
                "how many donors corroborate the organization's widget failures.",
                ["organization_id"],
                registry=r,
            ),
            body_timeouts=Counter(
                "passiton_exporter_body_timeouts",
                "Requests whose body did not arrive within EXPORTER_BODY_TIMEOUT_SECONDS.",
                registry=r,
            ),
            connections_refused=Counter(
                "passiton_exporter_connections_refused",
                "Connections closed as soon as they were accepted because the listener already "
                "held EXPORTER_PUBLIC_MAX_CONNECTIONS.",
                ["listener"],
                registry=r,
            ),
            public_throttled=Counter(
                "passiton_exporter_public_throttled",
                "Requests to the public listener past EXPORTER_PUBLIC_RATE_PER_SECOND (everyone "
                "together), by outcome: delayed (held until their turn, then served) or shed "
                "(their turn more than EXPORTER_PUBLIC_MAX_WAIT_SECONDS away: answered 503 with "
                "Retry-After). A flood of the public listener (security signal).",
                ["outcome"],
                registry=r,
            ),
            label_expired=Counter(
                "passiton_exporter_label_expired",
                "Label values forgotten after EXPORTER_LABEL_IDLE_SECONDS unseen; their series "
                "were removed.",
                ["label"],
                registry=r,
            ),
            series_budget_overflow=Counter(
                "passiton_exporter_series_budget_overflow",
                "Samples folded into the metric's 'other' series because the metric reached "
                "EXPORTER_MAX_SERIES_PER_METRIC.",
                ["metric"],
                registry=r,
            ),
            event_loop_lag=Histogram(
                "passiton_event_loop_lag_seconds",
                "How late the event loop ran a callback scheduled for a fixed interval.",
                buckets=EVENT_LOOP_LAG_BUCKETS,
                registry=r,
            ),
            database_probe_enabled=database_probe,
        )
        metrics.initialise()
        return metrics
