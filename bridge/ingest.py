"""Notifications in, one transaction out: alert rows, fatigue state, notifications, outbox.

Only alert events the database did not know yet (``store_alerts`` decides, atomically) are
routed, so a retried or duplicated notification stores nothing new and notifies nobody again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.deadman import WATCHDOG, DeadMansSwitch
from bridge.fatigue import FatigueRules, alert_key
from bridge.incidents import DEFAULT_WINDOW, CausalMap, IncidentBook
from bridge.merging import inherit_walks, merge_deliveries
from bridge.metrics import BridgeMetrics
from bridge.model import Alert, Notification, category_table
from bridge.oncall.config import OncallConfig
from bridge.oncall.escalation import new_escalations, route_incidents
from bridge.planning import ONCALL_REPLACES, Plan, build_deliveries, plan_notification
from bridge.routing import Router
from bridge.storage import (
    AlertState,
    NotificationRecord,
    Storage,
    StorageUnavailable,
    Transaction,
)
from bridge.topology import load_topology

__all__ = ["ONCALL_REPLACES", "IngestResult", "Ingestor", "build_deliveries", "plan_notification"]


@dataclass(frozen=True)
class IngestResult:
    new_events: int
    deliveries: int
    suppressed: dict[str, int]
    # the new events' instances (fingerprint, starts_at): what this call stored, no other
    # replica (the reconciler records why it resolved those)
    stored: frozenset[tuple[str, datetime]] = frozenset()


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
                acknowledged = await tx.acknowledged(firing, now) if firing else set()
                book = await self._place(tx, news, now) if events.indexes else None
                snoozed = (
                    await tx.snoozed_incidents(list(book.touched), now)
                    if book is not None
                    else set()
                )
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
                        snoozed,
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
                [k for plan in plans for k in plan.skips],
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
