"""One notification in, one transaction out: alert rows, fatigue state, notification, outbox.

Only alert events the database did not know yet (``store_alerts`` decides, atomically) are
routed, so a retried or duplicated notification stores nothing new and notifies nobody again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

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
from bridge.metrics import BridgeMetrics
from bridge.model import Alert, Message, Notification, category_table
from bridge.routing import Router
from bridge.storage import (
    AlertState,
    NewDelivery,
    NotificationRecord,
    Storage,
)

ONE_PER_ALERT = frozenset({"pagerduty"})  # each alert resolves on its own there


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


def build_deliveries(
    groups: dict[tuple[str, tuple[str, ...], datetime | None, str], list[Alert]],
    *,
    group_key: str,
    receiver: str,
    common_labels: dict[str, str],
    external_url: str,
    now: datetime,
) -> list[NewDelivery]:
    deliveries = []
    for (channel, recipients, not_before, notice), alerts in groups.items():
        batches = [[a] for a in alerts] if channel in ONE_PER_ALERT else [alerts]
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
) -> Plan:
    """Decide, in Python, who hears about the new alert events (keys run parallel to them)."""
    plan = Plan()
    groups: dict[tuple[str, tuple[str, ...], datetime | None, str], list[Alert]] = defaultdict(list)
    for alert, key in zip(new_alerts, keys, strict=True):
        reason = router.suppression(alert)
        if reason:
            plan.suppressed[reason] += 1
            continue
        state, verdict, changed = flap_step(
            plan.states.get(key) or states.get(key), alert, now, rules
        )
        if verdict == "quiet":
            plan.states[key] = state
            plan.suppressed["flapping"] += 1
            continue
        routes = router.routes(alert, now)
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
            groups[(route.channel, route.recipients, route.not_before, notice)].append(alert)
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
    )
    return plan


class Ingestor:
    def __init__(
        self,
        storage: Storage,
        router: Router,
        rules: FatigueRules,
        deadman: DeadMansSwitch,
        metrics: BridgeMetrics,
        clock: Callable[[], datetime],
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self.storage = storage
        self.router = router
        self.rules = rules
        self.deadman = deadman
        self.metrics = metrics
        self.clock = clock
        self.on_enqueued = on_enqueued

    async def ingest(self, notification: Notification) -> IngestResult:
        now = self.clock()
        watchdog = any(a.alertname == WATCHDOG for a in notification.alerts)
        # A fixed order keeps concurrent transactions from deadlocking on the unique indexes.
        alerts = sorted(
            (a for a in notification.alerts if a.alertname != WATCHDOG),
            key=lambda a: (a.fingerprint, a.starts_at, a.status),
        )
        plan = Plan()
        new: list[Alert] = []
        keys = [alert_key(a) for a in alerts]
        async with self.storage.transaction() as tx:
            if alerts:
                events = await tx.store_alerts(alerts, keys, now)
                new = [alerts[i] for i in events.indexes]
                plan = plan_notification(
                    notification,
                    new,
                    [keys[i] for i in events.indexes],
                    events.states,
                    self.router,
                    self.rules,
                    now,
                )
            if watchdog:
                plan.deliveries.extend(await self.deadman.on_watchdog(tx, now))
            record = NotificationRecord(
                notification.group_key,
                notification.receiver,
                notification.status,
                len(notification.alerts),
                len(new),
                len(plan.deliveries),
            )
            await tx.write_notification(
                dict(sorted(plan.states.items())), plan.deliveries, record, now, plan.holds
            )
        stored = Counter(category_table(a.category).removesuffix("_alerts") for a in new)
        for category, count in stored.items():
            self.metrics.alerts_stored.labels(category=category).inc(count)
        for reason, count in plan.suppressed.items():
            self.metrics.suppressed.labels(reason=reason).inc(count)
        if watchdog:
            self.metrics.watchdog_last_seen.set(now.timestamp())
        if plan.deliveries:
            self.on_enqueued()
        return IngestResult(len(new), len(plan.deliveries), dict(plan.suppressed))
