"""``IncidentActions`` on the database: acknowledge, resolve or silence an incident, and the
console's and API's work on it (unacknowledge, snooze, assign, notes: ``bridge.oncall.work``).

One transaction locks the incident row and its escalation, applies the action (an action that
changes nothing — a second press, a replayed link — writes nothing), writes who did it and how
on the incident's timeline, stops or re-arms the escalation (an incident merged into another
is acted on through the one it went into: ``surviving_incident``), and enqueues the mirror of the
action where the incident was paged (PagerDuty acknowledges or resolves its incident; Slack's
message is updated) through the outbox, so a PagerDuty outage delays that and loses nothing.
PagerDuty has no un-acknowledge: an unacknowledgement says so on the timeline.

Silence asks Alertmanager for a silence of the incident's alerts (their names and the labels
they share, never ``severity``) before the transaction, then acknowledges.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from bridge.codec import encode_message
from bridge.metrics import BridgeMetrics
from bridge.model import Message
from bridge.oncall.actions import AckFor, Action, ActionResult, OutsideScope, UnknownIncident, Via
from bridge.oncall.config import OncallConfig
from bridge.oncall.work import MIRRORED, PAGERDUTY_ACTIONS, VERBS, Work, check_arguments
from bridge.storage import Storage, Transaction
from bridge.storage.escalations import IncidentState
from bridge.storage.outbox import insert_deliveries
from bridge.storage.types import NewDelivery

log = logging.getLogger(__name__)

DEFAULT_SILENCE = timedelta(hours=1)
MAX_SILENCE = timedelta(days=7)


class SilenceError(RuntimeError):
    """No Alertmanager took the silence."""


class StoredIncidentActions:
    def __init__(
        self,
        storage: Storage,
        metrics: BridgeMetrics,
        clock: Callable[[], datetime],
        *,
        oncall: OncallConfig | None = None,
        mirror_channels: Collection[str] = (),
        alertmanager_urls: Sequence[str] = (),
        http: httpx.AsyncClient | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
        on_walk_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.storage = storage
        self.metrics = metrics
        self.clock = clock
        self.oncall = oncall
        # the channels that hold the incident's page and take the action on it (PagerDuty; Slack
        # when its messages can be updated in place)
        self.mirrored = tuple(mirror_channels)
        self.alertmanager_urls = tuple(alertmanager_urls)
        self.http = http
        self.on_enqueued = on_enqueued
        self.on_walk_changed = on_walk_changed

    async def act(
        self,
        incident_id: int,
        action: Action,
        *,
        person_id: str,
        via: Via,
        silence_for: timedelta | None = None,
        detail: Mapping[str, Any] | None = None,
        ack_for: AckFor = "policy",
        snooze_for: timedelta | None = None,
        assignee: str = "",
        text: str = "",
        within: Collection[str] | None = None,
    ) -> ActionResult:
        asked = incident_id
        check_arguments(action, ack_for=ack_for, snooze_for=snooze_for, text=text)
        silence_id = ""
        if action == "silence":
            async with self.storage.transaction() as tx:
                state = await tx.incident_for_update(await tx.surviving_incident(incident_id))
            _check_scope(asked, state, within)
            assert state is not None
            if state.status != "resolved":
                duration = min(silence_for or DEFAULT_SILENCE, MAX_SILENCE)
                silence_id = await self._silence(state, duration, person_id)
        now = self.clock()
        mirrored = False
        async with self.storage.transaction() as tx:
            state = await tx.incident_for_update(await tx.surviving_incident(incident_id))
            # merged into another: the action goes to that one, checked against the scope
            _check_scope(asked, state, within)
            assert state is not None
            incident_id = state.id
            entry: dict[str, object] = {**(detail or {}), "by": person_id, "via": via}
            if silence_id:
                entry["silence_id"] = silence_id
                await tx.add_incident_event(incident_id, "silenced", entry, now)
            work = Work(tx, state, entry, now, self.oncall)
            if action in ("acknowledge", "resolve", "silence"):
                status = await work.answer(action, ack_for)
            else:
                status = await work.other(action, snooze_for, assignee, text, self.mirrored)
            if work.changed and action in MIRRORED:
                mirrored = await self._mirror(tx, state, action, person_id, via, now)
        changed = work.changed
        outcome = "changed" if changed else "unchanged"
        self.metrics.incident_actions.labels(action=action, via=via, outcome=outcome).inc()
        if mirrored:
            self.on_enqueued()
        if work.walk_changed:
            self.on_walk_changed()
        log.info(
            "incident action",
            extra={"incident_id": incident_id, "action": action, "by": person_id, "via": via},
        )
        return ActionResult(incident_id, action, changed, status, state.title, entry)

    async def _mirror(
        self,
        tx: Transaction,
        state: IncidentState,
        action: Action,
        person_id: str,
        via: Via,
        now: datetime,
        notice: str = "",
    ) -> bool:
        """The action where the incident was paged, through the outbox: PagerDuty takes
        acknowledge and resolve (not its own: that came from its webhook), Slack every one
        (its message shows the state again)."""
        mirror = [
            NewDelivery(
                channel,
                f"incident:{state.id}",
                encode_message(action_message(state, action, person_id, via, notice)),
                now,
            )
            for channel in self.mirrored
            if channel != "pagerduty" or (via != "pagerduty" and action in PAGERDUTY_ACTIONS)
        ]
        if mirror:
            await insert_deliveries(tx.conn, mirror, now, returning=False)
        return bool(mirror)

    async def _silence(self, state: IncidentState, duration: timedelta, person_id: str) -> str:
        if not self.alertmanager_urls or self.http is None:
            raise SilenceError("no Alertmanager is configured (ALERTMANAGER_URL)")
        now = self.clock()
        body = {
            "matchers": silence_matchers(state),
            "startsAt": now.isoformat(),
            "endsAt": (now + duration).isoformat(),
            "createdBy": person_id,
            "comment": f"Incident #{state.id}: {state.title}"[:500],
        }
        errors = []
        for url in self.alertmanager_urls:  # a silence made on one member spreads to the cluster
            try:
                response = await self.http.post(url.rstrip("/") + "/api/v2/silences", json=body)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}")
                continue
            if response.status_code == 200:
                return str(response.json().get("silenceID", ""))
            errors.append(f"HTTP {response.status_code}")
        raise SilenceError("Alertmanager refused the silence: " + ", ".join(errors))


def _check_scope(asked: int, state: IncidentState | None, within: Collection[str] | None) -> None:
    """UnknownIncident when there is no such incident; OutsideScope when the one acted on (the
    survivor of merges) touches none of ``within``'s organizations."""
    if state is None:
        raise UnknownIncident(asked)
    if within is not None and not any(o in within for o in state.organizations):
        raise OutsideScope(asked, state.id)


def silence_matchers(state: IncidentState) -> list[dict[str, object]]:
    """The incident's alerts: their names (one regex) and the labels they all share."""
    names = sorted(state.alertnames)
    matchers: list[dict[str, object]] = [
        {
            "name": "alertname",
            "value": "|".join(re.escape(n) for n in names),
            "isRegex": len(names) > 1,
            "isEqual": True,
        }
    ]
    for name, value in sorted(state.labels.items()):
        if name in ("alertname", "severity") or not isinstance(value, str):
            continue
        matchers.append({"name": name, "value": value, "isRegex": False, "isEqual": True})
    return matchers


def action_message(
    state: IncidentState, action: Action, person_id: str, via: Via, notice: str = ""
) -> Message:
    """What a mirror channel is told of an action (Slack: a line in the incident's thread and
    its message's state; PagerDuty: acknowledge or resolve its incident)."""
    verb = VERBS.get(action, action)
    return Message(
        group_key=f"incident:{state.id}",
        status="resolved" if action == "resolve" else "firing",
        receiver="passiton-bridge",
        alerts=(),
        incident_id=state.id,
        incident_title=state.title,
        notice=notice or f"{verb.capitalize()} by {person_id} ({via}).",
        # PagerDuty takes acknowledge and resolve; Slack shows the incident's state again
        action="acknowledge" if action == "silence" else action,
    )
