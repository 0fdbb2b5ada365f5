"""Turns validated events into metric updates, with every label value bounded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from exporter import classify
from exporter.config import ExporterConfig
from exporter.events import (
    AuthFailed,
    DatabaseError,
    EndpointRequest,
    PaymentFailed,
    PaymentSucceeded,
    PaymentTimeout,
    StripeWebhookFailed,
    TrafficRequest,
    WidgetLoaded,
    WidgetLoadError,
    WidgetRenderError,
    WidgetScriptError,
)
from exporter.labels import OTHER, BoundedLabel
from exporter.metrics import ExporterMetrics
from exporter.sources import SourceWindow


class _Children:
    """Cache of labelled children: one dict lookup instead of prometheus_client's labels() path.

    Its size is bounded because every label value that reaches it is bounded.
    """

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: MetricWrapperBase) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)
        return child


class Recorder:
    """``clock`` (seconds, monotonic) drives the time-based state: the source sketch's sliding
    window and the snapshot cache. A replay passes its simulated time so a compressed run of
    weeks of traffic sees the same windows as live traffic would."""

    def __init__(
        self,
        metrics: ExporterMetrics,
        config: ExporterConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        m = self.metrics = metrics
        self._clock = clock
        b = config.bounds

        def bound(name: str, limit: int) -> BoundedLabel:
            return BoundedLabel(name, limit, m.label_overflow, m.label_values)

        self.organization = bound("organization_id", b.organization_id)
        self.widget = bound("widget_id", b.widget_id)
        self.route = bound("route", b.route)
        self.provider = bound("provider", 20)
        self.stripe_event_type = bound("event_type", 100)
        self.auth_reason = bound("reason", 50)
        self.db_operation = bound("operation", 50)
        self.sources = SourceWindow(
            config.source_window_seconds,
            capacity=config.source_capacity,
            top_n=config.source_top_n,
            clock=clock,
        )

        self._attempts = _Children(m.payment_attempts)
        self._failures = _Children(m.payment_failures)
        self._failed_amount = _Children(m.payment_failed_amount)
        self._timeouts = _Children(m.payment_timeouts)
        self._streak = _Children(m.payment_failure_streak)
        self._payment_duration = _Children(m.payment_duration)
        self._webhook_failures = _Children(m.stripe_webhook_handler_failures)
        self._widget_loads = _Children(m.widget_loads)
        self._widget_errors = _Children(m.widget_errors)
        self._widget_duration = _Children(m.widget_load_duration)
        self._traffic = _Children(m.traffic_requests)
        self._endpoint = _Children(m.endpoint_duration)
        self._auth = _Children(m.auth_failures)
        self._db_errors = _Children(m.database_errors)

        self._handlers: dict[type, Callable[[Any], None]] = {
            PaymentSucceeded: self._payment_succeeded,
            PaymentFailed: self._payment_failed,
            PaymentTimeout: self._payment_timeout,
            StripeWebhookFailed: self._stripe_webhook_failed,
            WidgetLoaded: self._widget_loaded,
            WidgetLoadError: self._widget_error("load"),
            WidgetRenderError: self._widget_error("render"),
            WidgetScriptError: self._widget_error("script"),
            TrafficRequest: self._traffic_request,
            EndpointRequest: self._endpoint_request,
            AuthFailed: self._auth_failed,
            DatabaseError: self._database_error,
        }
        self._dispatch = {
            cls: (handler, m.events_accepted.labels(type=cls.__struct_config__.tag))
            for cls, handler in self._handlers.items()
        }
        m.traffic_window_requests.set_function(lambda: self._source_snapshot()[0])
        m.traffic_top_sources_ratio.set_function(lambda: self._source_snapshot()[1])
        m.traffic_distinct_sources.set_function(lambda: self._source_snapshot()[2])
        self._snapshot_cache: tuple[float, tuple[int, float, float]] | None = None
        self._pending: dict[Any, float] = {}

    def record(self, events: Iterable[Any]) -> None:
        dispatch = self._dispatch
        pending = self._pending
        for event in events:
            handler, accepted = dispatch[type(event)]
            handler(event)
            pending[accepted] = pending.get(accepted, 0.0) + 1.0
        self._flush()

    def _inc(self, child: Any, amount: float = 1.0) -> None:
        # Counter increments of one batch are summed here and applied once per series in _flush:
        # a dict update instead of client_python's locked increment per event.
        pending = self._pending
        pending[child] = pending.get(child, 0.0) + amount

    def _flush(self) -> None:
        for child, amount in self._pending.items():
            child.inc(amount)
        self._pending.clear()

    # -- payments -------------------------------------------------------------------------

    def _payment_succeeded(self, e: PaymentSucceeded) -> None:
        org = self.organization(e.organization_id)
        self._inc(self._attempts(org, "succeeded"))
        self._streak(org).set(0)
        if e.duration_ms is not None:
            self._payment_duration("succeeded").observe(e.duration_ms / 1000.0)

    def _payment_failed(self, e: PaymentFailed) -> None:
        org = self.organization(e.organization_id)
        self._inc(self._attempts(org, "failed"))
        decline = classify.decline_code_label(e.decline_code)
        cls = classify.failure_class(e.decline_code, e.failure_code, e.error)
        self._inc(self._failures(org, decline, cls))
        if cls not in classify.CARD_FAILURE_CLASSES:
            self._streak(org).inc()
        if e.amount is not None:
            currency = classify.currency_label(e.currency)
            if currency in classify.CURRENCIES:
                self._inc(self._failed_amount(currency), classify.major_units(e.amount, currency))
            else:
                self._inc(self._failed_amount(currency), e.amount / 100.0)
        if e.duration_ms is not None:
            self._payment_duration("failed").observe(e.duration_ms / 1000.0)

    def _payment_timeout(self, e: PaymentTimeout) -> None:
        org = self.organization(e.organization_id)
        self._inc(self._attempts(org, "timeout"))
        self._streak(org).inc()
        provider = classify.token_label(e.provider) if e.provider else "unknown"
        self._inc(self._timeouts(org, self.provider(provider) if provider else OTHER))
        if e.duration_ms is not None:
            self._payment_duration("timeout").observe(e.duration_ms / 1000.0)

    def _stripe_webhook_failed(self, e: StripeWebhookFailed) -> None:
        event_type = stripe_event_type_label(e.event_type)
        self._inc(
            self._webhook_failures(
                self.stripe_event_type(event_type) if event_type != OTHER else OTHER,
                classify.error_class(e.error),
            )
        )

    def record_stripe_payment(self, organization_id: str, outcome: str, **fields: Any) -> None:
        """A payment outcome learnt from Stripe's own webhook, recorded like the app's events."""
        if outcome == "succeeded":
            self.record([PaymentSucceeded(organization_id=organization_id)])
        else:
            self.record([PaymentFailed(organization_id=organization_id, **fields)])

    # -- widgets --------------------------------------------------------------------------

    def _widget_loaded(self, e: WidgetLoaded) -> None:
        org = self.organization(e.organization_id)
        self._inc(self._widget_loads(org, self.widget(e.widget_id)))
        self._widget_duration(org).observe(e.duration_ms / 1000.0)

    def _widget_error(self, kind: str) -> Callable[[Any], None]:
        def record(e: WidgetLoadError | WidgetRenderError | WidgetScriptError) -> None:
            org = self.organization(e.organization_id)
            self._inc(self._widget_errors(org, self.widget(e.widget_id), kind))

        return record

    # -- traffic --------------------------------------------------------------------------

    def _traffic_request(self, e: TrafficRequest) -> None:
        org = self.organization(e.organization_id)
        self._inc(
            self._traffic(
                org, classify.country_label(e.country), classify.client_class(e.user_agent)
            )
        )
        if e.ip:
            self.sources.add(e.ip)

    def _source_snapshot(self) -> tuple[int, float, float]:
        # The three gauges are read in one scrape; compute the merge once for all of them.
        now = self._clock()
        cached = self._snapshot_cache
        if cached is None or now - cached[0] > 1.0:
            cached = self._snapshot_cache = (now, self.sources.snapshot())
        return cached[1]

    # -- endpoints and the dashboard ------------------------------------------------------

    def _endpoint_request(self, e: EndpointRequest) -> None:
        self._endpoint(
            self.route(classify.route_template(e.route)),
            classify.method_label(e.method),
            classify.status_class(e.status),
        ).observe(e.duration_ms / 1000.0)

    def _auth_failed(self, e: AuthFailed) -> None:
        reason = classify.token_label(e.reason)
        self._inc(self._auth(self.auth_reason(reason) if reason else OTHER))

    def _database_error(self, e: DatabaseError) -> None:
        operation = classify.token_label(e.operation)
        self._inc(self._db_errors(self.db_operation(operation) if operation else OTHER))


def stripe_event_type_label(event_type: str) -> str:
    token = classify.token_label(event_type)
    if token and "." in token:
        return token
    return OTHER
