"""Who hears about new alert events, decided in plain Python (``plan_notification``): the
routing (``routing.py``), acknowledgements, snoozes, flapping and cooldown (``fatigue.py``),
incidents (the incident is paged, not each alert), and the on-call routes. What it decides not
to send, and why, is kept per alert event and channel (``Plan.skips``, table ``alert_skips``),
so the console can say why an alert was not delivered."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime

from bridge.codec import encode_message
from bridge.fatigue import FLAPPING_NOTICE, FatigueRules, cooldown_verdict, flap_step, sent
from bridge.incidents import IncidentBook
from bridge.model import Alert, Message, Notification, category_table
from bridge.routing import Route, Router
from bridge.storage import AlertState, NewDelivery

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
    skips: list[Skip] = field(default_factory=list)  # why channels were not sent, per event

    def skip(self, alert: Alert, reason: str, channel: str = "*", until: datetime | None = None):
        """``alert``'s event reaches nobody on ``channel`` ('*': any) because of ``reason``."""
        self.skips.append(
            Skip(alert.fingerprint, alert.starts_at, alert.status, channel, reason, until)
        )

    def suppress(self, alert: Alert, reason: str) -> None:
        self.suppressed[reason] += 1
        self.skip(alert, reason)


@dataclass(frozen=True)
class Skip:
    """An alert event not sent on a channel, and why (a row of ``alert_skips``)."""

    fingerprint: str
    starts_at: datetime
    status: str
    channel: str  # '*': every channel
    reason: str
    until: datetime | None = None  # cooldown: held until; quiet_hours: sent then


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
    snoozed: Set[int] = frozenset(),
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
    in ``routed`` (sent to an escalation policy) skip the channels in ``ONCALL_REPLACES``; the
    firings of incidents in ``snoozed`` page nobody. Each reason for not sending is also kept
    per alert event and channel in ``Plan.skips``."""
    plan = Plan()
    groups: dict[GroupKey, list[Alert]] = defaultdict(list)
    titles: dict[int, str] = {}
    paging: set[int] = set()  # incidents this notification pages: all its alerts go in the page
    for alert, key in zip(new_alerts, keys, strict=True):
        incident = book.incident_of(alert) if book is not None else None
        for channel in router.unconfigured(alert):
            plan.skip(alert, "not_configured", channel)
        reason = router.suppression(alert)
        if reason:
            plan.suppress(alert, reason)
            continue
        if alert.status == "firing" and (alert.fingerprint, alert.starts_at) in acknowledged:
            plan.suppress(alert, "acknowledged")
            continue
        if alert.status == "firing" and incident is not None and incident.id in snoozed:
            plan.suppress(alert, "snoozed")
            continue
        state, verdict, changed = flap_step(
            plan.states.get(key) or states.get(key), alert, now, rules
        )
        if verdict == "quiet":
            plan.states[key] = state
            plan.suppress(alert, "flapping")
            continue
        if book is not None and incident is not None:
            if incident.id not in titles:  # once per incident: its members are placed already
                titles[incident.id] = incident.title(book.topology)
            if alert.status == "resolved" and incident.paged_severity is not None:
                # A paged incident: only its own resolve goes out, where its pages went.
                if changed:
                    plan.states[key] = state
                if not book.resolves(incident):
                    plan.suppress(alert, "incident")
                    continue
                book.resolve_sent(incident)
                notice = FLAPPING_NOTICE if verdict == "notice" else ""
                route_alert = book.routing_alert(incident, alert, incident.paged_severity)
                for route in _routes(router, route_alert, now, incident.id in routed, plan, alert):
                    groups[(incident.id, route.channel, route.recipients, None, notice)].append(
                        alert
                    )
                continue
            if (
                alert.status == "firing"
                and incident.id not in paging
                and not book.would_page(incident, alert)
            ):
                plan.suppress(alert, "incident")  # joined an incident paged already
                if changed:
                    plan.states[key] = state
                continue
        incident_id = incident.id if incident is not None else None
        routes = _routes(router, alert, now, incident_id in routed, plan, alert)
        grouped = False
        if not routes:
            plan.suppress(alert, "no_channel")
        held_until: datetime | None = None
        for route in routes:
            notice = FLAPPING_NOTICE if verdict == "notice" else ""
            if not notice:
                decision, until = cooldown_verdict(
                    state.channels.get(route.channel), alert, now, rules
                )
                if decision != "send":
                    plan.suppressed["cooldown"] += 1
                    plan.skip(alert, "cooldown" if until else "once", route.channel, until)
                    if until is not None:
                        held_until = max(held_until or until, until)
                    continue
                if alert.status == "firing":
                    state.channels[route.channel] = sent(alert, now)
                    changed = True
            if route.not_before is not None:
                plan.suppressed["quiet_hours"] += 1
                plan.skip(alert, "quiet_hours", route.channel, route.not_before)
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


def _routes(
    router: Router, alert: Alert, now: datetime, routed: bool, plan: Plan, event: Alert
) -> list[Route]:
    """The alert's routes; for an incident routed to on call, without the severity table's
    lists of people (``event`` records that on its channels)."""
    routes = router.routes(alert, now)
    if not routed:
        return routes
    for r in routes:
        if r.channel in ONCALL_REPLACES:
            plan.skip(event, "oncall", r.channel)
    return [r for r in routes if r.channel not in ONCALL_REPLACES]
