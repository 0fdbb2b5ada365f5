"""What each action does to one locked incident, inside ``IncidentActions.act``'s transaction:
its status, the timers (a chosen end of the acknowledgement, a snooze), the assignee, notes, the
incident's timeline (who, how) and its escalation walk. An action that changes nothing writes
nothing (``Work.changed`` stays False).

- acknowledge: the walk stops; ``ack_for`` a time: the incident's ``ack_expires_at`` (the sweep,
  ``bridge.oncall.timers``, re-opens it then and the walk starts again at step 1); "resolved":
  no end, whatever the policy says; "policy": the policy's ``ack_timeout`` as before. Ends a
  snooze.
- unacknowledge: back to firing, the alerts' acknowledgements forgotten (their repeats notify
  again) and the walk from step 1 at once, as GoAlert does.
- snooze: off the Now page and its pages and steps held until then, not acknowledged;
  unsnooze: back at once.
- assign: to a console user ("" nobody); note: free text on the timeline.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from bridge.oncall.actions import MAX_NOTE, AckFor, Action, ActionRefused, BadArgument
from bridge.oncall.config import OncallConfig
from bridge.oncall.escalation import Walk, acknowledged
from bridge.storage import Transaction
from bridge.storage.escalations import IncidentState

MAX_ACK = timedelta(days=7)
MAX_SNOOZE = timedelta(days=7)
# mirrored where the incident was paged (PagerDuty only the first three: it has no un-ack)
MIRRORED = frozenset({"acknowledge", "resolve", "silence", "unacknowledge"})
PAGERDUTY_ACTIONS = frozenset({"acknowledge", "resolve", "silence"})
PAGERDUTY_NO_UNACK = (
    "not on PagerDuty, which has no un-acknowledge: its incident stays acknowledged"
)
VERBS = {
    "acknowledge": "acknowledged",
    "resolve": "resolved",
    "silence": "silenced",
    "unacknowledge": "unacknowledged",
    "snooze": "snoozed",
    "unsnooze": "unsnoozed",
    "assign": "assigned",
    "note": "note",
}


def check_arguments(
    action: Action, *, ack_for: AckFor, snooze_for: timedelta | None, text: str
) -> None:
    """BadArgument (a 400) for an argument out of bounds, before anything is read."""
    if (
        action == "acknowledge"
        and isinstance(ack_for, timedelta)
        and not timedelta(0) < ack_for <= MAX_ACK
    ):
        raise BadArgument("an acknowledgement lasts more than 0 and at most 7 days")
    if action == "snooze" and (snooze_for is None or not timedelta(0) < snooze_for <= MAX_SNOOZE):
        raise BadArgument("a snooze lasts more than 0 and at most 7 days")
    if action == "note":
        if not text.strip():
            raise BadArgument("a note needs text")
        if len(text) > MAX_NOTE:
            raise BadArgument(f"a note is at most {MAX_NOTE} characters")
        if "\x00" in text:
            raise BadArgument("a note cannot contain NUL characters")


class Work:
    """One action on one incident whose row ``tx`` holds locked."""

    def __init__(
        self,
        tx: Transaction,
        state: IncidentState,
        entry: dict[str, Any],
        now: datetime,
        oncall: OncallConfig | None,
    ) -> None:
        self.tx = tx
        self.state = state
        self.entry = entry  # the timeline entry: who, how, and what the action adds
        self.now = now
        self.oncall = oncall
        self.changed = False
        self.walk_changed = False

    async def _event(self, kind: str) -> None:
        await self.tx.add_incident_event(self.state.id, kind, self.entry, self.now)
        self.changed = True

    async def answer(self, action: Action, ack_for: AckFor) -> str:
        """acknowledge, resolve, silence (which acknowledges): the status after."""
        target = "resolved" if action == "resolve" else "acknowledged"
        if self.state.status in ("resolved", target):
            return self.state.status
        tx, incident_id, now = self.tx, self.state.id, self.now
        work = await tx.incident_work(incident_id)
        await tx.set_incident_status(incident_id, target, now)
        until = (
            now + ack_for if target == "acknowledged" and isinstance(ack_for, timedelta) else None
        )
        if target == "acknowledged" and action == "acknowledge" and ack_for != "policy":
            self.entry["until"] = until.isoformat() if until else "resolved"
        if until is not None or work.ack_expires_at is not None:
            await tx.set_ack_expiry(incident_id, until)
        if work.snoozed_until is not None:
            await tx.set_snooze(incident_id, None, None)
        await self._event(target)
        await self._walk_answered(target, chosen=ack_for != "policy")
        return target

    async def _walk_answered(self, status: str, *, chosen: bool) -> None:
        escalation = await self.tx.escalation_for_update(self.state.id)
        if escalation is None:
            return
        policy_id, walk = escalation
        self.walk_changed = True
        if status == "resolved":
            walk = Walk("done", walk.step, walk.round, None)
        else:
            policy = self.oncall.policies.get(policy_id) if self.oncall is not None else None
            if policy is None or chosen:  # a chosen end is the sweep's (ack_expires_at)
                walk = Walk("acknowledged", walk.step, walk.round, None)
            else:
                walk = acknowledged(policy, walk, self.now)
        await self.tx.save_walk(self.state.id, walk, self.now)

    async def rearm(self) -> bool:
        """The walk from step 1 at once (the incident fires again); False without one."""
        if await self.tx.escalation_for_update(self.state.id) is None:
            return False
        await self.tx.save_walk(self.state.id, Walk("active", 0, 0, self.now), self.now)
        self.walk_changed = True
        return True

    async def other(
        self,
        action: Action,
        snooze_for: timedelta | None,
        assignee: str,
        text: str,
        mirrored: Collection[str],
    ) -> str:
        """unacknowledge, snooze, unsnooze, assign, note: the status after."""
        tx, incident_id, now, status = self.tx, self.state.id, self.now, self.state.status
        work = await tx.incident_work(incident_id)
        if action == "unacknowledge":
            if status != "acknowledged":
                return status
            await tx.set_incident_status(incident_id, "firing", now)
            if work.ack_expires_at is not None:
                await tx.set_ack_expiry(incident_id, None)
            self.entry["alerts"] = await tx.drop_alert_acknowledgements(incident_id)
            if "pagerduty" in mirrored and await tx.paged_on(incident_id, "pagerduty"):
                self.entry["pagerduty"] = PAGERDUTY_NO_UNACK
            if await self.rearm():
                self.entry["escalation"] = "from step 1"
            await self._event("unacknowledged")
            return "firing"
        if action == "note":
            if await tx.last_note(incident_id) == (self.entry["by"], text):
                return status  # the same note again (a second press): once
            self.entry["text"] = text
            await self._event("note")
            return status
        if action == "assign":
            if (work.assignee or "") == assignee:
                return status
            self.entry["to"] = assignee
            if work.assignee:
                self.entry["from"] = work.assignee
            await tx.set_assignee(incident_id, assignee or None)
            await self._event("assigned" if assignee else "unassigned")
            return status
        if status == "resolved":
            raise ActionRefused("the incident has resolved; there is nothing to snooze")
        if action == "snooze":
            assert snooze_for is not None
            until = now + snooze_for
            if work.snoozed_until == until:
                return status
            self.entry["until"] = until.isoformat()
            await tx.set_snooze(incident_id, until, str(self.entry["by"]))
            await self._event("snoozed")
            return status
        # unsnooze
        if work.snoozed_until is None or work.snoozed_until <= now:
            return status
        await tx.set_snooze(incident_id, None, None)
        await self._event("unsnoozed")
        escalation = await tx.escalation_for_update(incident_id)
        if escalation is not None and escalation[1].state == "active":
            walk = escalation[1]
            if walk.next_at is not None and walk.next_at >= work.snoozed_until:
                # a step the snooze held: due now
                await tx.save_walk(incident_id, Walk("active", walk.step, walk.round, now), now)
                self.walk_changed = True
        return status
