"""The escalation walk, decided in plain Python (no I/O, no clock of its own).

An incident that a route of ``ONCALL_CONFIG`` sends to a policy walks the policy's steps: the
first ``after`` its own delay from the incident's opening (usually at once), each later one its
``after`` after the step before it. After the last step the walk starts again at step 1
(``repeat`` times), the last step's delay later (at least ``MIN_REPEAT_DELAY``). An
acknowledgement stops the walk; one that is not followed by a resolve within the policy's
``ack_timeout`` starts it again at step 1. A resolve ends it.

``due`` says what to do with one escalation whose time came; ``pages`` says who a step notifies
and how. The storage layer (``bridge.storage.escalations``) claims due escalations under a row
lock and writes what these functions decide in the same transaction, so that a step goes out
once however many replicas run the engine.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bridge.codec import encode_message
from bridge.incidents import CausalMap, Incident, IncidentBook
from bridge.model import Alert, Message, Notification
from bridge.oncall.config import OncallConfig, Person, Policy
from bridge.oncall.schedule import Override, resolve_targets

MIN_REPEAT_DELAY = timedelta(minutes=1)
# Each way of being paged is delivered by the bridge's channel of the same name; slack is a
# mention of the person's Slack user in the incident's message.
VIA_CHANNEL: Mapping[str, str] = {
    "sms": "sms",
    "voice": "voice",
    "email": "email",
    "slack": "slack",
    "apprise": "apprise",
    "push": "webpush",
}

State = Literal["active", "acknowledged", "done"]


@dataclass(frozen=True)
class Walk:
    """Where an escalation stands: the next step to send, the walk it is in, when."""

    state: State
    step: int
    round: int
    next_at: datetime | None


@dataclass(frozen=True)
class Page:
    """One notification of one person by one contact."""

    person_id: str
    via: str
    address: str


@dataclass(frozen=True)
class Unreachable:
    """A person a step names who has no contact for a ``via``, or whose channel is off."""

    person_id: str
    via: str
    reason: str


@dataclass(frozen=True)
class NewEscalation:
    """The walk an incident starts when a route sends it to a policy."""

    incident_id: int
    policy_id: str
    walk: Walk
    message: bytes  # the encoded page (bridge.codec.encode_message), without recipients
    labels: Mapping[str, str]


def route_incidents(
    incidents: Iterable[Incident], config: OncallConfig, topology: CausalMap
) -> dict[int, Policy]:
    """The open incidents a route of the on-call file sends to a policy (first match)."""
    routed = {}
    for incident in incidents:
        if not incident.is_open:
            continue
        labels = routing_labels(
            incident.labels, incident.severity, incident.probable_cause(topology)
        )
        policy = config.policy_for(labels)
        if policy is not None and policy.steps:
            routed[incident.id] = policy
    return routed


def new_escalations(
    book: IncidentBook,
    routed: Mapping[int, Policy],
    notifications: Sequence[Notification],
    news: Sequence[Sequence[Alert]],
    now: datetime,
) -> list[NewEscalation]:
    """The walks that the routed, firing incidents of one ingest transaction start (an incident
    that has one keeps it: the store inserts only the missing ones). The page the steps send
    lists the incident's alerts that fired in this transaction."""
    out = []
    for incident_id, policy in routed.items():
        incident = book.incidents[incident_id]
        if incident.status != "firing":
            continue
        firing: list[Alert] = []
        receiver = external_url = ""
        for notification, alerts in zip(notifications, news, strict=True):
            mine = [a for a in alerts if a.status == "firing" and book.incident_of(a) is incident]
            if mine:
                firing.extend(mine)
                receiver, external_url = notification.receiver, notification.external_url
        if not firing:
            continue
        title = incident.title(book.topology)
        message = Message(
            group_key=f"incident:{incident_id}",
            status="firing",
            receiver=receiver,
            alerts=tuple(firing),
            external_url=external_url,
            incident_id=incident_id,
            incident_title=title,
        )
        labels = routing_labels(
            incident.labels, incident.severity, incident.probable_cause(book.topology)
        )
        walk = start(policy, min(incident.opened_at, now))
        out.append(NewEscalation(incident_id, policy.id, walk, encode_message(message), labels))
    return out


def start(policy: Policy, opened_at: datetime) -> Walk:
    """The walk of a newly routed incident: step 1 its own delay after the incident opened."""
    first = policy.steps[0].after if policy.steps else timedelta(0)
    return Walk("active", 0, 0, opened_at + first)


def after_step(policy: Policy, walk: Walk, now: datetime) -> Walk:
    """The walk once step ``walk.step`` was sent at ``now``."""
    following = walk.step + 1
    if following < len(policy.steps):
        return Walk("active", following, walk.round, now + policy.steps[following].after)
    if walk.round < policy.repeat:
        delay = max(policy.steps[-1].after, MIN_REPEAT_DELAY)
        return Walk("active", 0, walk.round + 1, now + delay)
    return Walk("done", following, walk.round, None)


def acknowledged(policy: Policy, walk: Walk, now: datetime) -> Walk:
    """An acknowledgement: the walk stops; with an ``ack_timeout`` it is due again then."""
    until = now + policy.ack_timeout if policy.ack_timeout else None
    return Walk("acknowledged", walk.step, walk.round, until)


def acknowledgement_expired(policy: Policy, now: datetime) -> Walk:
    """Acknowledged, not resolved within ``ack_timeout``: from step 1 again, at once."""
    return Walk("active", 0, 0, now)


def pages(
    config: OncallConfig,
    policy: Policy,
    step: int,
    now: datetime,
    overrides: Sequence[Override],
    channels: Collection[str],
) -> tuple[list[Page], list[Unreachable]]:
    """Who step ``step`` notifies at ``now`` (schedules resolved with the overrides) and how;
    and whom it cannot reach (no such contact, or the channel is not configured)."""
    target = policy.steps[step]
    people: list[Person] = resolve_targets(config, target.notify, now, overrides)
    sent: list[Page] = []
    missing: list[Unreachable] = []
    for person in people:
        for via in target.via:
            addresses = person.contacts.for_via(via)
            if not addresses:
                missing.append(Unreachable(person.id, via, f"no {via} contact"))
            elif VIA_CHANNEL[via] not in channels:
                missing.append(Unreachable(person.id, via, f"the {via} channel is not configured"))
            else:
                sent.extend(Page(person.id, via, address) for address in addresses)
    return sent, missing


def routing_labels(labels: Mapping[str, str], severity: str, cause: str) -> dict[str, str]:
    """The labels a route's matchers see: the incident's common labels, its severity, and the
    alert name of its probable cause when its alerts do not share one."""
    merged = dict(labels)
    merged["severity"] = severity
    merged.setdefault("alertname", cause)
    return merged


def reply_hint(incident_id: int) -> str:
    """How to answer a page by SMS (``bridge.oncall.replies`` parses the answer)."""
    return f"Reply {incident_id}a to acknowledge, {incident_id}c to resolve."
