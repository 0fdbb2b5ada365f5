"""Turns validated events into metric updates, with every label value bounded."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase

from exporter import classify
from exporter.config import ExporterConfig
from exporter.events import (
    WIDGET_ERRORS,
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
from exporter.labels import OTHER, BoundedLabel, Clock
from exporter.metrics import PAYMENT_OUTCOMES, ExporterMetrics
from exporter.payment_retries import RecentFailures
from exporter.sources import RecentDistinct, SourceWindow

# the window of the organizations' distinct widget-failure sources: the widget rules' 5 minutes
ORGANIZATION_SOURCE_WINDOW = 300
# a declined payment under this many units of its currency is what card testing tries
SMALL_PAYMENT = 5.0


class _Children:
    """Cache of labelled children: one dict lookup instead of prometheus_client's labels() path.

    Every label value that reaches it is bounded, and the metric has a series budget on top:
    past ``budget`` series, a new combination folds its open-ended labels (``bounded``
    positions) to ``other``, counted in ``passiton_exporter_series_budget_overflow_total``.
    """

    __slots__ = ("_bounded", "_budget", "_cache", "_metric", "_overflow")

    def __init__(
        self,
        metric: MetricWrapperBase,
        budget: int | None = None,
        bounded: tuple[int, ...] = (),
        overflow: Counter | None = None,
    ) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}
        self._budget = budget
        self._bounded = bounded
        self._overflow = overflow.labels(metric=metric._name) if overflow is not None else None

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            if self._budget is not None and len(self._cache) >= self._budget and self._bounded:
                folded = tuple(OTHER if i in self._bounded else v for i, v in enumerate(values))
                if folded != values:
                    if self._overflow is not None:
                        self._overflow.inc()
                    return self(*folded) if folded in self._cache else self._add(folded)
            child = self._add(values)
        return child

    def _add(self, values: tuple[str, ...]) -> Any:
        child = self._cache[values] = self._metric.labels(*values)
        return child

    def forget(self, position: int, gone: set[str]) -> int:
        """Remove every series whose label at ``position`` is one of ``gone``."""
        doomed = [key for key in self._cache if key[position] in gone]
        for key in doomed:
            del self._cache[key]
            self._metric.remove(*key)
        return len(doomed)

    def __len__(self) -> int:
        return len(self._cache)


# a batch is recorded in runs of this many events, the loop given a turn once SLICE_SECONDS pass
SLICE_EVENTS = 8
SLICE_SECONDS = 0.010


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

        self.clock = Clock(clock)
        self.client_class = classify.ClientClassifier()
        idle = config.label_idle_seconds

        def bound(name: str, limit: int, *, expiring: bool = False) -> BoundedLabel:
            return BoundedLabel(
                name,
                limit,
                m.label_overflow,
                m.label_values,
                expired=m.label_expired,
                idle_seconds=idle if expiring else None,
                clock=self.clock,
            )

        # Organizations of payment and traffic series are admitted from authenticated sources only
        # (the events API and Stripe); widget series have their own admission, which the public
        # beacon (keyed, but browsers' traffic) feeds too. Neither can crowd out the other.
        self.organization = bound("organization_id", b.organization_id, expiring=True)
        self.widget_organization = bound("widget_organization_id", b.organization_id, expiring=True)
        self.widget = bound("widget_id", b.widget_id, expiring=True)
        self.route = bound("route", b.route, expiring=True)
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
        # clients (through trusted proxies) that sent widget errors through the beacon
        self.failure_sources = SourceWindow(
            config.source_window_seconds,
            capacity=config.source_capacity,
            top_n=config.source_top_n,
            clock=clock,
        )

        budget = config.max_series_per_metric

        def children(metric: MetricWrapperBase, *bounded: int) -> _Children:
            return _Children(metric, budget, bounded, m.series_budget_overflow)

        self._attempts = children(m.payment_attempts, 0)
        self._failures = children(m.payment_failures, 0)
        self._payments = children(m.payments, 0)
        self._small_declines = children(m.payment_small_declines, 0)
        # organizations whose payments series exist (every outcome at 0 from the first payment)
        self._payment_organizations: set[str] = set()
        self._recent_failures = RecentFailures(clock=clock)
        self._failed_amount = _Children(m.payment_failed_amount)
        self._timeouts = children(m.payment_timeouts, 0)
        self._streak = children(m.payment_failure_streak, 0)
        self._payment_duration = _Children(m.payment_duration)
        self._webhook_failures = _Children(m.stripe_webhook_handler_failures)
        self._widget_loads = children(m.widget_loads, 0, 1)
        self._widget_errors = children(m.widget_errors, 0, 1)
        self._widget_duration = children(m.widget_load_duration, 0)
        self._traffic = children(m.traffic_requests, 0)
        self._endpoint = children(m.endpoint_duration, 0)
        self._auth = _Children(m.auth_failures)
        self._db_errors = _Children(m.database_errors)
        self._org_sources = children(m.widget_failure_organization_sources, 0)
        # per widget organization (a bounded label value): who reported its widget errors
        self._org_failure_sources: dict[str, RecentDistinct] = {}
        # who removes what when a label value is forgotten: (children, label position)
        self._uses: dict[str, list[tuple[_Children, int]]] = {
            "organization_id": [
                (self._attempts, 0),
                (self._failures, 0),
                (self._payments, 0),
                (self._small_declines, 0),
                (self._timeouts, 0),
                (self._streak, 0),
                (self._traffic, 0),
            ],
            "widget_organization_id": [
                (self._widget_loads, 0),
                (self._widget_errors, 0),
                (self._widget_duration, 0),
                (self._org_sources, 0),
            ],
            "widget_id": [(self._widget_loads, 1), (self._widget_errors, 1)],
            "route": [(self._endpoint, 0)],
        }
        self.on_series_removed: list[Callable[[], None]] = []
        self._expiring = (self.organization, self.widget_organization, self.widget, self.route)
        for label in self._expiring:
            label.on_expire = functools.partial(self._forget, label.name)

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
        m.widget_failure_sources.set_function(lambda: self.failure_sources.snapshot()[2])
        self._error_reports = {
            channel: m.widget_error_reports.labels(channel=channel)
            for channel in ("events", "beacon")
        }
        self._snapshot_cache: tuple[float, tuple[int, float, float]] | None = None
        self._pending: dict[Any, float] = {}

    def _forget(self, label: str, gone: set[str]) -> None:
        removed = sum(children.forget(position, gone) for children, position in self._uses[label])
        if label == "organization_id":
            self._payment_organizations -= gone
        if removed:
            for callback in self.on_series_removed:
                callback()

    def expire_idle(self) -> None:
        """Forget label values unseen for EXPORTER_LABEL_IDLE_SECONDS (called at each scrape)."""
        self.clock.tick()
        self.refresh_widget_sources()
        for label in self._expiring:
            label.expire()

    def record(self, events: Iterable[Any]) -> None:
        self.clock.tick()
        self.client_class.new_batch()
        dispatch = self._dispatch
        pending = self._pending
        for event in events:
            handler, accepted = dispatch[type(event)]
            handler(event)
            pending[accepted] = pending.get(accepted, 0.0) + 1.0
        self._flush()

    async def record_sliced(
        self, events: Sequence[Any], slice_seconds: float = SLICE_SECONDS
    ) -> None:
        """``record`` for a batch, giving the event loop a turn whenever recording has run
        ``slice_seconds`` (checked every ``SLICE_EVENTS`` events): whatever the batch holds, no
        request holds the loop much longer than that. The increments recorded so far are applied
        before each turn, so a concurrent request never sees another's half-summed counts."""
        if len(events) <= SLICE_EVENTS:
            self.record(events)
            return
        self.clock.tick()
        self.client_class.new_batch()
        dispatch = self._dispatch
        pending = self._pending
        clock = time.perf_counter
        started = clock()
        for start in range(0, len(events), SLICE_EVENTS):
            for event in events[start : start + SLICE_EVENTS]:
                handler, accepted = dispatch[type(event)]
                handler(event)
                pending[accepted] = pending.get(accepted, 0.0) + 1.0
            if clock() - started >= slice_seconds:
                self._flush()
                await asyncio.sleep(0)
                self.clock.tick()
                started = clock()
        self._flush()

    def count_widget_reports(
        self, events: Iterable[Any], channel: str, client: str | None = None
    ) -> None:
        """Count the widget errors among recorded ``events`` by the channel they arrived through
        ("events": the authenticated API, "beacon": browsers); each one from a beacon adds its
        client to the distinct failure sources, the evidence of an outage seen by many."""
        errors = 0
        organizations: set[str] = set()
        for e in events:
            if isinstance(e, WIDGET_ERRORS):
                errors += 1
                if client is not None:
                    self.failure_sources.add(client)
                    organizations.add(e.organization_id)
        if errors:
            self._error_reports[channel].inc(errors)
        for organization_id in organizations:
            org = self.widget_organization(organization_id)
            sources = self._org_failure_sources.get(org)
            if sources is None:
                sources = self._org_failure_sources[org] = RecentDistinct(
                    ORGANIZATION_SOURCE_WINDOW, clock=self._clock
                )
            sources.add(client or "")
            self._org_sources(org).set(sources.count())

    def refresh_widget_sources(self) -> None:
        """Age the organizations' distinct widget-failure sources (called at each scrape): an
        organization nobody reports for falls back to 0 and is then forgotten."""
        for org, sources in list(self._org_failure_sources.items()):
            count = sources.count()
            self._org_sources(org).set(count)
            if not count:
                del self._org_failure_sources[org]

    def _inc(self, child: Any, amount: float = 1.0) -> None:
        # Counter increments of one batch are summed here and applied once per series in _flush:
        # a dict update instead of client_python's locked increment per event.
        pending = self._pending
        pending[child] = pending.get(child, 0.0) + amount

    def _flush(self) -> None:
        # the counter's value directly: Counter.inc re-checks, per call, what holds for every
        # child here (a counter, a labelled child, a positive amount)
        for child, amount in self._pending.items():
            child._value.inc(amount)
        self._pending.clear()

    # -- payments -------------------------------------------------------------------------

    def _count_payment(self, org: str, outcome: str) -> None:
        if org not in self._payment_organizations:
            self._payment_organizations.add(org)
            for each in PAYMENT_OUTCOMES:
                self._payments(org, each)
            self._small_declines(org)
        self._inc(self._payments(org, outcome))

    def _payment_succeeded(self, e: PaymentSucceeded) -> None:
        org = self.organization(e.organization_id)
        self._inc(self._attempts(org, "succeeded"))
        self._count_payment(org, "succeeded")
        self._streak(org).set(0)
        if e.duration_ms is not None:
            self._payment_duration("succeeded").observe(e.duration_ms / 1000.0)

    def _payment_failed(self, e: PaymentFailed) -> None:
        org = self.organization(e.organization_id)
        self._inc(self._attempts(org, "failed"))
        decline = classify.decline_code_label(e.decline_code)
        cls = classify.failure_class(e.decline_code, e.failure_code, e.error)
        self._inc(self._failures(org, decline, cls))
        declined = cls in classify.CARD_FAILURE_CLASSES
        if not declined:
            self._streak(org).inc()
        new_payment = self._recent_failures.first_failure(org, e.payment_id)
        if new_payment:
            self._count_payment(org, "declined" if declined else "failed")
        if e.amount is not None:
            currency = classify.currency_label(e.currency)
            if currency in classify.CURRENCIES:
                amount = classify.major_units(e.amount, currency)
            else:
                amount = e.amount / 100.0
            self._inc(self._failed_amount(currency), amount)
            if declined and new_payment and amount < SMALL_PAYMENT:
                self._inc(self._small_declines(org))
        if e.duration_ms is not None:
            self._payment_duration("failed").observe(e.duration_ms / 1000.0)

    def _payment_timeout(self, e: PaymentTimeout) -> None:
        org = self.organization(e.organization_id)
        self._inc(self._attempts(org, "timeout"))
        self._count_payment(org, "timeout")
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
        org = self.widget_organization(e.organization_id)
        self._inc(self._widget_loads(org, self.widget(e.widget_id)))
        self._widget_duration(org).observe(e.duration_ms / 1000.0)

    def _widget_error(self, kind: str) -> Callable[[Any], None]:
        def record(e: WidgetLoadError | WidgetRenderError | WidgetScriptError) -> None:
            org = self.widget_organization(e.organization_id)
            self._inc(self._widget_errors(org, self.widget(e.widget_id), kind))

        return record

    # -- traffic --------------------------------------------------------------------------

    def _traffic_request(self, e: TrafficRequest) -> None:
        org = self.organization(e.organization_id)
        self._inc(
            self._traffic(org, classify.country_label(e.country), self.client_class(e.user_agent))
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
