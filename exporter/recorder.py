"""Turns validated events into metric updates, with every label value bounded.

A batch is recorded by label set: its events are grouped by the fields that decide their label
values (``LABEL_FIELDS``; timestamps, durations, amounts and addresses do not), and each group is
classified, bounded and counted once, its counters increased by its size; what differs between
its events is folded per group (durations bucketed, amounts summed, addresses counted). The
metrics end as recording the events one by one, in order, would leave them: the failure streak
is settled in the batch's order, and overflows are counted per event.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from exporter import classify
from exporter.batches import LABEL_KEYS, Batch, group_by_labels, seconds, some_seconds
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
from exporter.labels import OTHER, BoundedLabel, Clock
from exporter.metrics import COMMON_DECLINE_CODES, PAYMENT_OUTCOMES, ExporterMetrics
from exporter.payment_retries import RecentFailures
from exporter.series import Children, add, observe_many
from exporter.sources import SourceWindow
from exporter.widget_reports import WidgetReports

# a declined payment under this many units of its currency is what card testing tries
SMALL_PAYMENT = 5.0


# a batch is recorded a label set at a time, the loop given a turn once SLICE_SECONDS pass; one
# of at most SLICE_EVENTS events in one pass
SLICE_EVENTS = 8
SLICE_SECONDS = 0.010
_IP = attrgetter("ip")
# the label values a failed payment's free fields classify to (decline_code, failure_code, error,
# currency -> decline label, failure class, declined or not, currency label, minor units per
# major), remembered for this many distinct combinations (then forgotten all at once): the same
# few combinations arrive again and again, each classified once instead of once per request
FAILURE_LABELS_KEPT = 4096


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

        def source_window() -> SourceWindow:
            return SourceWindow(
                config.source_window_seconds,
                capacity=config.source_capacity,
                top_n=config.source_top_n,
                clock=clock,
            )

        self.sources = source_window()
        budget = config.max_series_per_metric

        def children(metric: MetricWrapperBase, *bounded: int) -> Children:
            return Children(metric, budget, bounded, m.series_budget_overflow)

        self._attempts = children(m.payment_attempts, 0)
        self._failures = children(m.payment_failures, 0)
        self._payments = children(m.payments, 0)
        self._small_declines = children(m.payment_small_declines, 0)
        self._declines = children(m.payment_declines, 0)
        # organizations whose payments series exist (every outcome at 0 from the first payment)
        self._payment_organizations: set[str] = set()
        self._recent_failures = RecentFailures(clock=clock)
        self._failed_amount = Children(m.payment_failed_amount)
        self._timeouts = children(m.payment_timeouts, 0)
        self._streak = children(m.payment_failure_streak, 0)
        self._payment_duration = Children(m.payment_duration)
        self._webhook_failures = Children(m.stripe_webhook_handler_failures)
        self._widget_loads = children(m.widget_loads, 0, 1)
        self._widget_errors = children(m.widget_errors, 0, 1)
        self._widget_duration = children(m.widget_load_duration, 0)
        self._traffic = children(m.traffic_requests, 0)
        self._endpoint = children(m.endpoint_duration, 0)
        self._auth = Children(m.auth_failures)
        self._db_errors = Children(m.database_errors)
        self._org_sources = children(m.widget_failure_organization_sources, 0)
        # clients (through trusted proxies) that sent widget errors through the beacon
        self.widget_reports = WidgetReports(
            m, source_window(), self.widget_organization, self._org_sources, clock
        )
        # who removes what when a label value is forgotten: (children, label position)
        self._uses: dict[str, list[tuple[Children, int]]] = {
            "organization_id": [
                (self._attempts, 0),
                (self._failures, 0),
                (self._payments, 0),
                (self._small_declines, 0),
                (self._declines, 0),
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

        # each event type's group recorder: (key, events, the batch's state)
        self._groups: dict[type, Callable[[tuple[Any, ...], list[Any], Batch], None]] = {
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
        self._accepted = {
            cls: m.events_accepted.labels(type=cls.__struct_config__.tag) for cls in self._groups
        }
        m.traffic_window_requests.set_function(lambda: self._source_snapshot()[0])
        m.traffic_top_sources_ratio.set_function(lambda: self._source_snapshot()[1])
        m.traffic_distinct_sources.set_function(lambda: self._source_snapshot()[2])
        self._snapshot_cache: tuple[float, tuple[int, float, float]] | None = None
        self._failure_labels: dict[tuple[Any, ...], tuple[str, str, bool, str, float]] = {}
        # a failed payment's group key -> its series resolved (_failure_plan); forgotten with
        # any series, and all at once past FAILURE_LABELS_KEPT keys
        self._failure_plans: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def _forget(self, label: str, gone: set[str]) -> None:
        self._failure_plans.clear()
        removed = sum(children.forget(position, gone) for children, position in self._uses[label])
        if label == "organization_id":
            self._payment_organizations -= gone
        if removed:
            for callback in self.on_series_removed:
                callback()

    def expire_idle(self) -> None:
        """Forget label values unseen for EXPORTER_LABEL_IDLE_SECONDS (called at each scrape)."""
        self.clock.tick()
        self.widget_reports.refresh()
        for label in self._expiring:
            label.expire()

    def record(self, events: Sequence[Any]) -> None:
        if len(events) == 1:  # the common request: one event, one label set
            self._record_one(events[0])
            return
        for _ in self._recording(events):
            pass

    async def record_sliced(
        self, events: Sequence[Any], slice_seconds: float = SLICE_SECONDS
    ) -> None:
        """``record`` for a batch, giving the event loop a turn whenever recording has run
        ``slice_seconds`` (checked after each label set): whatever the batch holds, no request
        holds the loop much longer than that. Each label set's increments are applied whole
        before a turn, so a concurrent request never sees half of one."""
        if len(events) <= SLICE_EVENTS:
            self.record(events)
            return
        clock = time.perf_counter
        started = clock()
        for _ in self._recording(events):
            if clock() - started >= slice_seconds:
                await asyncio.sleep(0)
                self.clock.tick()
                started = clock()

    def _record_one(self, event: Any) -> None:
        """``_recording`` for a batch of one event, without the grouping's machinery."""
        self.clock.tick()
        self.client_class.new_batch()
        cls = event.__class__
        batch = Batch()
        self._groups[cls](LABEL_KEYS[cls](event), [event], batch)
        add(self._accepted[cls], 1)
        if batch.touches:
            batch.settle_streaks(self._streak, (event,))
        if batch.traffic and event.ip:
            self.sources.add_counts({event.ip: 1})

    def _recording(self, events: Sequence[Any]) -> Iterator[None]:
        """Record ``events`` a label set at a time, yielding after each."""
        self.clock.tick()
        self.client_class.new_batch()
        groups = group_by_labels(events)
        recorders, accepted = self._groups, self._accepted
        batch = Batch()
        last = len(groups) - 1
        for i, (key, group) in enumerate(groups.items()):
            cls = key[0]
            recorders[cls](key, group, batch)
            add(accepted[cls], len(group))
            if i < last:
                yield
        if batch.touches:
            batch.settle_streaks(self._streak, events)
        if batch.traffic:
            addresses = Tally(map(_IP, chain.from_iterable(batch.traffic)))
            addresses.pop(None, None)
            addresses.pop("", None)
            self.sources.add_counts(addresses)

    # -- payments: each takes a group (key: class + LABEL_FIELDS) -------------------------

    def _count_payments(self, org: str, outcome: str, n: int) -> None:
        """passiton_payments_total: every outcome exists at 0 from an organization's first
        payment, so that its first decline shows in increase()."""
        if org not in self._payment_organizations:
            self._payment_organizations.add(org)
            for each in PAYMENT_OUTCOMES:
                self._payments.weighted((org, each), 0)
            self._small_declines.weighted((org,), 0)
            for code in COMMON_DECLINE_CODES:
                self._declines.weighted((org, code), 0)
            # processing failures too: an outage's first failures then show in rate() at the
            # next scrape, not a scrape late and without their first count (a new series)
            for cls in classify.PROCESSING_FAILURE_CLASSES:
                self._failures.weighted((org, "none", cls), 0)
        add(self._payments.weighted((org, outcome), n), n)

    def _payment_succeeded(
        self, key: tuple[Any, ...], group: list[PaymentSucceeded], batch: Batch
    ) -> None:
        n = len(group)
        org = self.organization(key[1], n)
        add(self._attempts.weighted((org, "succeeded"), n), n)
        self._count_payments(org, "succeeded", n)
        batch.add_streak(key, org, False, n)
        durations = some_seconds(group)
        if durations:
            observe_many(self._payment_duration("succeeded"), durations)

    def _failure_labels_of(self, fields: tuple[Any, ...]) -> tuple[str, str, bool, str, float]:
        """(decline label, failure class, declined, currency label, minor units per major) of a
        failed payment's (decline_code, failure_code, error, currency); pure, so remembered."""
        labels = self._failure_labels.get(fields)
        if labels is None:
            decline_code, failure_code, error, currency = fields
            cls = classify.failure_class(decline_code, failure_code, error)
            label = classify.currency_label(currency)
            labels = (
                classify.decline_code_label(decline_code),
                cls,
                cls in classify.CARD_FAILURE_CLASSES,
                label,
                # an unknown currency counts in hundredths, like most
                classify.minor_per_major(label) if label in classify.CURRENCIES else 100.0,
            )
            if len(self._failure_labels) >= FAILURE_LABELS_KEPT:
                self._failure_labels.clear()
            self._failure_labels[fields] = labels
        return labels

    def _failure_plan(self, key: tuple[Any, ...], org: str, n: int) -> tuple[Any, ...]:
        """(org, attempts child, failures child, declined, decline label, currency label, minor
        units per major) of a failed payment's group ``key`` (``n`` events) bounded to ``org``;
        kept for the next group of that key when neither child was folded by its series budget (a
        fold counts its overflows per event, so it is resolved again each time)."""
        decline, cls, declined, label, per_major = self._failure_labels_of(key[2:])
        attempts_key, failures_key = (org, "failed"), (org, decline, cls)
        attempts = self._attempts.weighted(attempts_key, n)
        failures = self._failures.weighted(failures_key, n)
        plan = (org, attempts, failures, declined, decline, label, per_major)
        if (
            self._attempts.existing(attempts_key) is attempts
            and self._failures.existing(failures_key) is failures
        ):
            if len(self._failure_plans) >= FAILURE_LABELS_KEPT:
                self._failure_plans.clear()
            self._failure_plans[key] = plan
        return plan

    def _payment_failed(
        self, key: tuple[Any, ...], group: list[PaymentFailed], batch: Batch
    ) -> None:
        n = len(group)
        org = self.organization(key[1], n)
        plan = self._failure_plans.get(key)
        if plan is None or plan[0] != org:
            plan = self._failure_plan(key, org, n)
        _, attempts, failures, declined, decline, label, per_major = plan
        add(attempts, n)
        add(failures, n)
        if not declined:
            batch.add_streak(key, org, True, n)
        # one pass over the events, in order: a payment's retries (its payment_id failing again
        # within the window) count once; amounts summed; small declined payments (new ones only)
        first_failure = self._recent_failures.first_failure
        new = small = amount_sum = 0
        amounts = False
        durations: list[float] = []
        for e in group:
            amount = e.amount
            if amount is not None:
                amount_sum += amount
                amounts = True
            if not e.payment_id or first_failure(org, e.payment_id):
                new += 1
                if declined and amount is not None and amount / per_major < SMALL_PAYMENT:
                    small += 1
            if e.duration_ms is not None:
                durations.append(e.duration_ms / 1000.0)
        if new:
            self._count_payments(org, "declined" if declined else "failed", new)
            if declined:
                add(self._declines.weighted((org, decline), new), new)
        if amounts:
            add(self._failed_amount(label), amount_sum / per_major)
        if small:
            add(self._small_declines.weighted((org,), small), small)
        if durations:
            observe_many(self._payment_duration("failed"), durations)

    def _payment_timeout(
        self, key: tuple[Any, ...], group: list[PaymentTimeout], batch: Batch
    ) -> None:
        _, organization_id, provider_name = key
        n = len(group)
        org = self.organization(organization_id, n)
        add(self._attempts.weighted((org, "timeout"), n), n)
        self._count_payments(org, "timeout", n)
        batch.add_streak(key, org, True, n)
        provider = classify.token_label(provider_name) if provider_name else "unknown"
        provider = self.provider(provider, n) if provider else OTHER
        add(self._timeouts.weighted((org, provider), n), n)
        durations = some_seconds(group)
        if durations:
            observe_many(self._payment_duration("timeout"), durations)

    def _stripe_webhook_failed(
        self, key: tuple[Any, ...], group: list[StripeWebhookFailed], _: Batch
    ) -> None:
        n = len(group)
        event_type = stripe_event_type_label(key[1])
        if event_type != OTHER:
            event_type = self.stripe_event_type(event_type, n)
        add(self._webhook_failures(event_type, classify.error_class(key[2])), n)

    def record_stripe_payment(self, organization_id: str, outcome: str, **fields: Any) -> None:
        """A payment outcome learnt from Stripe's own webhook, recorded like the app's events."""
        if outcome == "succeeded":
            self.record([PaymentSucceeded(organization_id=organization_id)])
        else:
            self.record([PaymentFailed(organization_id=organization_id, **fields)])

    # -- widgets --------------------------------------------------------------------------

    def _widget_loaded(self, key: tuple[Any, ...], group: list[WidgetLoaded], _: Batch) -> None:
        n = len(group)
        org = self.widget_organization(key[1], n)
        add(self._widget_loads.weighted((org, self.widget(key[2], n)), n), n)
        observe_many(self._widget_duration.weighted((org,), n), seconds(group))

    def _widget_error(self, kind: str) -> Callable[[tuple[Any, ...], list[Any], Batch], None]:
        def record(key: tuple[Any, ...], group: list[Any], _: Batch) -> None:
            n = len(group)
            org = self.widget_organization(key[1], n)
            add(self._widget_errors.weighted((org, self.widget(key[2], n), kind), n), n)

        return record

    # -- traffic --------------------------------------------------------------------------

    def _traffic_request(
        self, key: tuple[Any, ...], group: list[TrafficRequest], batch: Batch
    ) -> None:
        _, organization_id, country, user_agent = key
        n = len(group)
        org = self.organization(organization_id, n)
        labels = (org, classify.country_label(country), self.client_class(user_agent))
        add(self._traffic.weighted(labels, n), n)
        batch.traffic.append(group)

    def _source_snapshot(self) -> tuple[int, float, float]:
        # The three gauges are read in one scrape; compute the merge once for all of them.
        now = self._clock()
        cached = self._snapshot_cache
        if cached is None or now - cached[0] > 1.0:
            cached = self._snapshot_cache = (now, self.sources.snapshot())
        return cached[1]

    # -- endpoints and the dashboard ------------------------------------------------------

    def _endpoint_request(
        self, key: tuple[Any, ...], group: list[EndpointRequest], _: Batch
    ) -> None:
        _, route, method, status = key
        n = len(group)
        labels = (
            self.route(classify.route_template(route), n),
            classify.method_label(method),
            classify.status_class(status),
        )
        observe_many(self._endpoint.weighted(labels, n), seconds(group))
        # a route's 5xx series exists at 0 from its first request (and goes with the route's
        # other series when it is forgotten): otherwise its first errors make a new series,
        # which rate() sees only from its second scrape and without the errors before it
        errors = (*labels[:2], "5xx")
        if self._endpoint.existing(errors) is None:
            self._endpoint.weighted(errors, 0)

    def _auth_failed(self, key: tuple[Any, ...], group: list[AuthFailed], _: Batch) -> None:
        n = len(group)
        reason = classify.token_label(key[1])
        add(self._auth(self.auth_reason(reason, n) if reason else OTHER), n)

    def _database_error(self, key: tuple[Any, ...], group: list[DatabaseError], _: Batch) -> None:
        n = len(group)
        operation = classify.token_label(key[1])
        add(self._db_errors(self.db_operation(operation, n) if operation else OTHER), n)


def stripe_event_type_label(event_type: str) -> str:
    token = classify.token_label(event_type)
    if token and "." in token:
        return token
    return OTHER
