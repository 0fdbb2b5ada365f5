"""What a merge of incidents (``IncidentBook.merge``) sends, and what becomes of its escalations.

The on-call person's view: incident #2 (payment failures) was paged, then the database alert
showed that it and #1 (API errors) are one outage. #1 carries on (``choose_survivor``); #2 must
stop asking for attention without saying the problem is over. So, where #2 was paged (the
channels of the highest severity it paged, per its organization when it had one):

- PagerDuty resolves #2's incident (its ``dedup_key``): PagerDuty would otherwise keep it open,
  and escalate it, until the survivor resolves, while nobody works on it under that number. The
  Events API takes no note with a resolve, so the note is in Slack and on #2's timeline
  (``merged_into``). #1's PagerDuty incident stays open: the merge sends it nothing, neither a
  trigger (no second opening page) nor a resolve.
- Slack (and the console channel) get one line: ``[MERGED] Incident #2: … merged into incident
  #1: <its new title>``, so whoever is looking at #2's message knows where the work goes on.
- SMS, voice and e-mail get nothing: they reach people, and the people are reached by the
  survivor's own pages and escalation; a text at night that says "nothing new" is noise.

An absorbed incident that was never paged sends nothing. An escalation of an absorbed incident
stops (the storage's ``hand_over_escalations``); the survivor, when it is routed to the same
policy and has no walk of its own, carries on with the absorbed walk where it stood
(``inherit_walks``), so the people already paged for #2 are not paged from step 1 again. People
notified for #2 count as notified for #1 (an SMS ``ack`` finds it), and an action on #2 (``2a``,
a button, an e-mail link) acts on #1 (``surviving_incident``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from bridge.codec import encode_message
from bridge.incidents import IncidentBook, Merge
from bridge.model import Alert, Message, Notification
from bridge.oncall.escalation import NewEscalation, Walk
from bridge.routing import Router
from bridge.storage.types import NewDelivery

RESOLVE_CHANNELS = frozenset({"pagerduty"})  # hold an incident of their own: resolved
NOTE_CHANNELS = frozenset({"slack", "console"})  # the team's channels: one line


def merge_note(merge: Merge, survivor_title: str) -> str:
    return (
        f"Merged into incident #{merge.survivor.id}: {survivor_title}. "
        "The problem goes on there; this incident is closed."
    )


def merge_deliveries(
    book: IncidentBook,
    router: Router,
    notifications: Sequence[Notification],
    news: Sequence[Sequence[Alert]],
    now: datetime,
) -> list[list[NewDelivery]]:
    """The messages the merges of one transaction send, per notification (the one holding the
    alert that related the incidents), in the notifications' order."""
    out: list[list[NewDelivery]] = [[] for _ in notifications]
    owner = {(a.fingerprint, a.starts_at): i for i, alerts in enumerate(news) for a in alerts}
    for merge in book.merges:
        absorbed = merge.absorbed
        if absorbed.paged_severity is None:
            continue
        index = owner.get((merge.alert.fingerprint, merge.alert.starts_at), 0)
        notification = notifications[index]
        labels = dict(merge.alert.labels)
        labels["severity"] = absorbed.paged_severity
        if len(merge.organizations) == 1:
            labels["organization_id"] = merge.organizations[0]
        else:
            labels.pop("organization_id", None)
        base = Message(
            group_key=f"incident:{absorbed.id}",
            status="resolved",
            receiver=notification.receiver,
            alerts=(),
            external_url=notification.external_url,
            notice=merge_note(merge, merge.survivor.title(book.topology)),
            incident_id=absorbed.id,
            incident_title=absorbed.title(book.topology),
        )
        for route in router.routes(replace(merge.alert, labels=labels), now):
            if route.channel in RESOLVE_CHANNELS:
                action = "resolve"
            elif route.channel in NOTE_CHANNELS:
                action = "merged"
            else:
                continue
            message = replace(base, recipients=route.recipients, action=action)
            out[index].append(
                NewDelivery(route.channel, base.group_key, encode_message(message), now)
            )
    return out


def inherit_walks(
    escalations: Sequence[NewEscalation], inherited: Mapping[int, tuple[str, Walk]]
) -> list[NewEscalation]:
    """The survivors' new escalations, each carrying on the walk of an incident it absorbed
    (``hand_over_escalations``) when that one followed the same policy."""
    out = []
    for escalation in escalations:
        held = inherited.get(escalation.incident_id)
        if held is not None and held[0] == escalation.policy_id:
            escalation = replace(escalation, walk=held[1])
        out.append(escalation)
    return out
