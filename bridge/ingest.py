"""Notifications in, one transaction out: alert rows, fatigue state, notifications, outbox.

Only alert events the database did not know yet (``store_alerts`` decides, atomically) are
routed, so a retried or duplicated notification stores nothing new and notifies nobody again.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bridge.codec import encode_message
from bridge.deadman import WATCHDOG, DeadMansSwitch
from bridge.fatigue import (
    FLAPPING_NOTICE,
    FatigueRules,
    alert_key,
    cooldown_verdict,
    flap_step,
    sent,
)
from bridge.incidents import DEFAULT_WINDOW, CausalMap, IncidentBook
from bridge.merging import inherit_walks, merge_deliveries
from bridge.metrics import BridgeMetrics
from bridge.model import Alert, Message, Notification, category_table
from bridge.oncall.config import OncallConfig
from bridge.oncall.escalation import new_escalations, route_incidents
from bridge.routing import Route, Router
from bridge.storage import (
    AlertState,
    NewDelivery,
    NotificationRecord,
    Storage,
    StorageUnavailable,
    Transaction,
)
from bridge.topology import load_topology

ONE_PER_ALERT = frozenset({"pagerduty"})  # each alert resolves on its own there
# An incident that the on-call file routes to a policy reaches people by its escalation: the
# severity table's lists of people (ALERT_SMS_RECIPIENTS, ALERT_EMAIL_RECIPIENTS) are left out.
# Team channels (Slack's channel, PagerDuty) still carry its page.
ONCALL_REPLACES = frozenset({"sms", "email"})


@dataclass
class Plan:
    deliveries: list[NewDelivery] = field(default_factory=list)
    states: dict[str, AlertState] = field(default_factory=dict)  # changed ones, to be written
    holds: list[tuple[str, str, datetime, datetime]] = field(default_factory=list)
    suppressed: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class IngestResult:
    new_events: int
    deliveries: int
    suppressed: dict[str, int]
    # the new events' instances (fingerprint, starts_at): what this call stored, no other
    # replica (the reconciler records why it resolved those)
    stored: frozenset[tuple[str, datetime]] = frozenset()


GroupKey = tuple[int | None, str, tuple[str, ...], datetime | None, str]


def build_deliveries(
    groups: dict[GroupKey, list[Alert]],
    *,
    group_key: str,
    receiver: str,
    common_labels: dict[str, str],
    external_url: str,
    now: datetime,
    group_status: str = "",
    titles: dict[int, str] | None = None,
) -> list[NewDelivery]:
    """One message per incident (or, for an alert without one, per group) and channel."""
    deliveries = []
    for (incident, channel, recipients, not_before, notice), alerts in groups.items():
        split = incident is None and channel in ONE_PER_ALERT
        batches = [[a] for a in alerts] if split else [alerts]
        for batch in batches:
            message = Message(
                group_key=group_key,
                status="firing" if any(a.status == "firing" for a in batch) else "resolved",
                receiver=receiver,
                alerts=tuple(batch),
                common_labels=common_labels,
                external_url=external_url,
                recipients=recipients,
                notice=notice,
                group_status=group_status,
                incident_id=incident,
                incident_title=(titles or {}).get(incident, "") if incident is not None else "",
            )
            deliveries.append(
                NewDelivery(channel, group_key, encode_message(message), not_before or now)
            )
    return deliveries


def plan_notification(
    notification: Notification,
    new_alerts: Sequence[Alert],
    keys: Sequence[str],
    states: dict[str, AlertState],
    router: Router,
    rules: FatigueRules,
    now: datetime,
    acknowledged: Set[tuple[str, datetime]] = frozenset(),
    book: IncidentBook | None = None,
    routed: Set[int] = frozenset(),
) -> Plan:
    """Decide, in Python, who hears about the new alert events (keys run parallel to them).

    A firing the console acknowledged (same fingerprint and starts_at: the same instance, so
    neither a re-fire after a resolve nor an escalation, which changes the severity label and
    with it the fingerprint) is not repeated to the channels; its resolve still is.

    With ``book`` (the incidents, every alert placed in one already) the incident is paged, not
    its alerts: a firing pages when it opens the incident or raises its severity, with the
    other alerts of that incident in the same notification (one message per incident and
    channel); once paged, the incident's own resolve goes to the channels of the highest
    severity paged; every other event of its alerts is suppressed as ``incident``. The incidents
    in ``routed`` (sent to an escalation policy) skip the channels in ``ONCALL_REPLACES``."""
    plan = Plan()
    groups: dict[GroupKey, list[Alert]] = defaultdict(list)
    titles: dict[int, str] = {}
    paging: set[int] = set()  # incidents this notification pages: all its alerts go in the page
    for alert, key in zip(new_alerts, keys, strict=True):
        incident = book.incident_of(alert) if book is not None else None
        reason = router.suppression(alert)
        if reason:
            plan.suppressed[reason] += 1
            continue
        if alert.status == "firing" and (alert.fingerprint, alert.starts_at) in acknowledged:
            plan.suppressed["acknowledged"] += 1
            continue
        state, verdict, changed = flap_step(
            plan.states.get(key) or states.get(key), alert, now, rules
        )
        if verdict == "quiet":
            plan.states[key] = state
            plan.suppressed["flapping"] += 1
            continue
        if book is not None and incident is not None:
            if incident.id not in titles:  # once per incident: its members are placed already
                titles[incident.id] = incident.title(book.topology)
            if alert.status == "resolved" and incident.paged_severity is not None:
                # A paged incident: only its own resolve goes out, where its pages went.
                if changed:
                    plan.states[key] = state
                if not book.resolves(incident):
                    plan.suppressed["incident"] += 1
                    continue
                book.resolve_sent(incident)
                notice = FLAPPING_NOTICE if verdict == "notice" else ""
                route_alert = book.routing_alert(incident, alert, incident.paged_severity)
                for route in _routes(router, route_alert, now, incident.id in routed):
                    groups[(incident.id, route.channel, route.recipients, None, notice)].append(
                        alert
                    )
                continue
            if (
                alert.status == "firing"
                and incident.id not in paging
                and not book.would_page(incident, alert)
            ):
                plan.suppressed["incident"] += 1  # joined an incident paged already
                if changed:
                    plan.states[key] = state
                continue
        incident_id = incident.id if incident is not None else None
        routes = _routes(router, alert, now, incident_id in routed)
        grouped = False
        if not routes:
            plan.suppressed["no_channel"] += 1
        held_until: datetime | None = None
        for route in routes:
            notice = FLAPPING_NOTICE if verdict == "notice" else ""
            if not notice:
                decision, until = cooldown_verdict(
                    state.channels.get(route.channel), alert, now, rules
                )
                if decision != "send":
                    plan.suppressed["cooldown"] += 1
                    if until is not None:
                        held_until = max(held_until or until, until)
                    continue
                if alert.status == "firing":
                    state.channels[route.channel] = sent(alert, now)
                    changed = True
            if route.not_before is not None:
                plan.suppressed["quiet_hours"] += 1
            groups[(incident_id, route.channel, route.recipients, route.not_before, notice)].append(
                alert
            )
            grouped = True
        if grouped and book is not None and incident is not None and alert.status == "firing":
            book.paged(incident, alert)
            paging.add(incident.id)
        if changed:
            plan.states[key] = state
        if held_until is not None:
            table = category_table(alert.category)
            plan.holds.append((table, alert.fingerprint, alert.starts_at, held_until))
    plan.deliveries = build_deliveries(
        groups,
        group_key=notification.group_key,
        receiver=notification.receiver,
        common_labels=notification.common_labels,
        external_url=notification.external_url,
        now=now,
        group_status=notification.status,
        titles=titles,
    )
    return plan


def _routes(router: Router, alert: Alert, now: datetime, routed: bool) -> list[Route]:
    routes = router.routes(alert, now)
    return [r for r in routes if r.channel not in ONCALL_REPLACES] if routed else routes


@dataclass
class _Pending:
    """One notification waiting for (or in) a batch transaction."""

    notification: Notification
    alerts: list[Alert]  # without the Watchdog
    keys: list[str]
    watchdog: bool
    result: asyncio.Future[IngestResult]

    @property
    def identities(self) -> set[tuple[str, datetime]]:
        return {(a.fingerprint, a.starts_at) for a in self.alerts}


class Ingestor:
    """Stores notifications; concurrent ones are coalesced into one transaction.

    A notification arriving while ``max_inflight`` transactions are running waits for the next,
    which writes every waiting notification together (up to ``max_batch`` of them and
    ``max_batch_alerts`` alerts; an idle bridge writes one at once). Each caller is answered
    only after the commit holding its rows. The batch behaves as the same notifications one
    after another: each is planned with the fatigue state its predecessors in the batch left,
    and one whose alert is already in the batch waits for the next transaction (an upsert cannot
    touch a row twice; nor does it join a concurrent batch holding that alert, so the same alert
    is written in arrival order). If the batch fails: StorageUnavailable is every member's
    answer (503); any other error is retried as one transaction per notification, so a bad one
    fails alone.
    """

    def __init__(
        self,
        storage: Storage,
        router: Router,
        rules: FatigueRules,
        deadman: DeadMansSwitch,
        metrics: BridgeMetrics,
        clock: Callable[[], datetime],
        on_enqueued: Callable[[], None] = lambda: None,
        *,
        max_inflight: int = 2,
        max_batch: int = 64,
        max_batch_alerts: int = 2000,
        topology: CausalMap | None = None,
        incident_window: timedelta = DEFAULT_WINDOW,
        oncall: OncallConfig | None = None,
        on_escalation: Callable[[], None] = lambda: None,
    ) -> None:
        self.storage = storage
        self.router = router
        self.rules = rules
        self.deadman = deadman
        self.metrics = metrics
        self.clock = clock
        self.on_enqueued = on_enqueued
        self.max_inflight = max_inflight
        self.max_batch = max_batch
        self.max_batch_alerts = max_batch_alerts
        self.topology = load_topology() if topology is None else topology
        self.incident_window = incident_window
        self.oncall = oncall
        self.on_escalation = on_escalation
        self.transactions = 0  # batch transactions committed (tests, benchmarks)
        self._queue: list[_Pending] = []
        self._writers: set[asyncio.Task[None]] = set()
        self._writing: Counter[tuple[str, datetime]] = Counter()  # in the running batches

    async def ingest(self, notification: Notification) -> IngestResult:
        # A fixed order keeps concurrent transactions from deadlocking on the unique indexes.
        alerts = sorted(
            (a for a in notification.alerts if a.alertname != WATCHDOG),
            key=lambda a: (a.fingerprint, a.starts_at, a.status),
        )
        watchdog = len(alerts) < len(notification.alerts)
        future = asyncio.get_running_loop().create_future()
        pending = _Pending(notification, alerts, [alert_key(a) for a in alerts], watchdog, future)
        self._queue.append(pending)
        if len(self._writers) < self.max_inflight:
            self._writers.add(asyncio.create_task(self._write_queued(), name="ingest-batch"))
        # The write goes on if this caller goes away: its answer may be lost, never half a batch.
        return await asyncio.shield(future)

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        seen: set[tuple[str, datetime]] = set()
        count = 0
        rest: list[_Pending] = []
        for i, pending in enumerate(self._queue):
            if len(batch) >= self.max_batch or (
                batch and count + len(pending.alerts) > self.max_batch_alerts
            ):
                rest.extend(self._queue[i:])
                break
            identities = pending.identities
            if seen & identities or any(x in self._writing for x in identities):
                rest.append(pending)  # the same alert twice: after the one before committed
                continue
            seen |= identities
            count += len(pending.alerts)
            batch.append(pending)
        self._queue = rest
        self._writing.update(seen)
        return batch

    async def _write_queued(self) -> None:
        batch: list[_Pending] = []
        try:
            while self._queue:
                batch = self._take_batch()
                if not batch:  # all wait for a running batch, whose writer takes them next
                    return
                try:
                    results = await self._write(batch)
                except StorageUnavailable as exc:
                    _answer(batch, exc)
                except Exception as exc:
                    if len(batch) == 1:
                        _answer(batch, exc)
                    else:  # not the database being away: one may be bad, so each on its own
                        for pending in batch:
                            try:
                                _answer([pending], (await self._write([pending]))[0])
                            except Exception as single:
                                _answer([pending], single)
                else:
                    for pending, result in zip(batch, results, strict=True):
                        _answer([pending], result)
                self._release(batch)
        except BaseException:  # cancelled (shutdown): nothing of the batch was committed
            for pending in [*batch, *self._queue]:
                pending.result.cancel()
            self._queue = []
            self._release(batch)
            raise
        finally:
            # Left in the same step as the last look at the queue (a done-callback would come a
            # step later, and a notification queued in between could find no writer).
            self._writers.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _release(self, batch: list[_Pending]) -> None:
        for pending in batch:
            self._writing.subtract(pending.identities)
        self._writing = +self._writing  # drop the zeros

    async def _write(self, batch: list[_Pending]) -> list[IngestResult]:
        """One transaction for the batch; the results, in its order, once it committed."""
        now = self.clock()
        alerts: list[Alert] = []
        keys: list[str] = []
        owner: list[int] = []
        for i, pending in enumerate(batch):
            alerts.extend(pending.alerts)
            keys.extend(pending.keys)
            owner.extend([i] * len(pending.alerts))
        if len(batch) > 1:  # the same fixed order across the whole batch
            order = sorted(
                range(len(alerts)),
                key=lambda j: (alerts[j].fingerprint, alerts[j].starts_at, alerts[j].status),
            )
            alerts, keys, owner = (
                [alerts[j] for j in order],
                [keys[j] for j in order],
                [owner[j] for j in order],
            )
        plans = [Plan() for _ in batch]
        news: list[list[Alert]] = [[] for _ in batch]
        states: dict[str, AlertState] = {}
        changed: dict[str, AlertState] = {}
        started = 0
        async with self.storage.transaction() as tx:
            if alerts:
                events = await tx.store_alerts(alerts, keys, now)
                new_keys: list[list[str]] = [[] for _ in batch]
                for j in events.indexes:
                    news[owner[j]].append(alerts[j])
                    new_keys[owner[j]].append(keys[j])
                states = dict(events.states)
                firing = [
                    (alerts[j].fingerprint, alerts[j].starts_at)
                    for j in events.indexes
                    if alerts[j].status == "firing"
                ]
                acknowledged = await tx.acknowledged(firing) if firing else set()
                book = await self._place(tx, news, now) if events.indexes else None
                routed = (
                    route_incidents(book.touched.values(), self.oncall, self.topology)
                    if book is not None and self.oncall is not None
                    else {}
                )
                for i, pending in enumerate(batch):
                    if not news[i]:
                        continue
                    plans[i] = plan = plan_notification(
                        pending.notification,
                        news[i],
                        new_keys[i],
                        states,
                        self.router,
                        self.rules,
                        now,
                        acknowledged,
                        book,
                        routed.keys(),
                    )
                    states.update(plan.states)  # what the next in the batch starts from
                    changed.update(plan.states)
                notifications = [p.notification for p in batch]
                inherited = {}
                if book is not None and book.merges:  # what the absorbed incidents' pages become
                    extra = merge_deliveries(book, self.router, notifications, news, now)
                    for plan, deliveries in zip(plans, extra, strict=True):
                        plan.deliveries.extend(deliveries)
                    inherited = await tx.hand_over_escalations(
                        [(m.absorbed.id, m.survivor.id) for m in book.merges], now
                    )
                if book is not None:
                    await tx.save_incidents(list(book.touched.values()), self.topology, now)
                if book is not None and routed:
                    escalations = new_escalations(book, routed, notifications, news, now)
                    started = await tx.start_escalations(inherit_walks(escalations, inherited), now)
            for i, pending in enumerate(batch):
                if pending.watchdog:
                    plans[i].deliveries.extend(await self.deadman.on_watchdog(tx, now))
            records = [
                NotificationRecord(
                    p.notification.group_key,
                    p.notification.receiver,
                    p.notification.status,
                    len(p.notification.alerts),
                    len(news[i]),
                    len(plans[i].deliveries),
                )
                for i, p in enumerate(batch)
            ]
            await tx.write_notification(
                dict(sorted(changed.items())),
                [d for plan in plans for d in plan.deliveries],
                records,
                now,
                [h for plan in plans for h in plan.holds],
            )
        self.transactions += 1
        if started:
            self.on_escalation()
        return [self._count(p, news[i], plans[i], now) for i, p in enumerate(batch)]

    async def _place(self, tx: Transaction, news: list[list[Alert]], now: datetime) -> IncidentBook:
        """Every new alert event into its incident, under the lock that keeps two replicas
        from opening two incidents for one problem (held until commit)."""
        await tx.lock_incidents()
        book = IncidentBook(await tx.open_incidents(), self.topology, now, self.incident_window)
        for alerts in news:
            for alert in alerts:
                book.place(alert)
        if book.new_incidents:
            book.renumber(await tx.reserve_incident_ids(len(book.new_incidents)))
        return book

    def _count(
        self, pending: _Pending, new: list[Alert], plan: Plan, now: datetime
    ) -> IngestResult:
        """Metrics of one committed notification, and its result."""
        stored = Counter(category_table(a.category).removesuffix("_alerts") for a in new)
        for category, count in stored.items():
            self.metrics.alerts_stored.labels(category=category).inc(count)
        for reason, count in plan.suppressed.items():
            self.metrics.suppressed.labels(reason=reason).inc(count)
        if pending.watchdog:
            self.metrics.watchdog_last_seen.set(now.timestamp())
        if plan.deliveries:
            self.on_enqueued()
        return IngestResult(
            len(new),
            len(plan.deliveries),
            dict(plan.suppressed),
            frozenset((a.fingerprint, a.starts_at) for a in new),
        )


def _answer(batch: list[_Pending], outcome: IngestResult | Exception) -> None:
    for pending in batch:
        if pending.result.done():
            continue
        if isinstance(outcome, Exception):
            pending.result.set_exception(outcome)
        else:
            pending.result.set_result(outcome)
