"""The sweep of the incidents' timers, on the bridge's clock: an acknowledgement whose chosen
end came moves the incident back to firing and its escalation starts again at step 1; a snooze
whose end came puts the incident back on the Now page (its held steps are due then anyway).

One transaction claims the incidents due (``FOR UPDATE SKIP LOCKED``) and clears their timers
as it handles them, so each runs out once however many replicas sweep at the same moment. The
escalator runs it at the start of each tick (``Escalator.run_once``), so the walks it re-arms
are sent in the same tick.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from bridge.codec import encode_message
from bridge.metrics import BridgeMetrics
from bridge.oncall.incident_actions import action_message
from bridge.oncall.work import Work
from bridge.storage import Storage
from bridge.storage.escalations import IncidentState
from bridge.storage.outbox import insert_deliveries
from bridge.storage.types import NewDelivery


class IncidentTimers:
    def __init__(
        self,
        storage: Storage,
        metrics: BridgeMetrics,
        clock: Callable[[], datetime],
        *,
        mirror_channels: Collection[str] = (),
        on_enqueued: Callable[[], None] = lambda: None,
        batch: int = 50,
    ) -> None:
        self.storage = storage
        self.metrics = metrics
        self.clock = clock
        # Slack's message shows the incident firing again (PagerDuty has no un-acknowledge)
        self.mirrored = tuple(c for c in mirror_channels if c != "pagerduty")
        self.on_enqueued = on_enqueued
        self.batch = batch

    async def run_once(self) -> int:
        """Handle the timers due now; the number of incidents handled."""
        now = self.clock()
        enqueued = False
        async with self.storage.transaction() as tx:
            due = await tx.claim_run_out(now, self.batch)
            for row in due:
                if row.snoozed_until is not None and row.snoozed_until <= now:
                    await tx.set_snooze(row.id, None, None)
                    if row.status != "resolved":  # a resolved one is not coming back
                        by, until = row.snoozed_by or "", row.snoozed_until.isoformat()
                        detail = {"by": by, "until": until}
                        await tx.add_incident_event(row.id, "snooze_ended", detail, now)
                        self.metrics.escalation_events.labels(event="snooze_ended").inc()
                if row.ack_expires_at is None or row.ack_expires_at > now:
                    continue
                await tx.set_ack_expiry(row.id, None, alerts=False)
                if row.status != "acknowledged":
                    continue  # resolved or unacknowledged meanwhile: only the timer goes
                await tx.set_incident_status(row.id, "firing", now)
                state = await tx.incident_summary(row.id)
                assert state is not None
                entry: dict[str, object] = {"until": row.ack_expires_at.isoformat(), "chosen": True}
                if await Work(tx, state, entry, now, None).rearm():
                    entry["escalation"] = "from step 1"
                await tx.add_incident_event(row.id, "acknowledgement_expired", entry, now)
                self.metrics.escalation_events.labels(event="acknowledgement_expired").inc()
                if self.mirrored:
                    await insert_deliveries(tx.conn, self._mirror(state, now), now, returning=False)
                    enqueued = True
        if enqueued:
            self.on_enqueued()
        return len(due)

    def _mirror(self, state: IncidentState, now: datetime) -> list[NewDelivery]:
        message = action_message(
            state,
            "unacknowledge",
            "",
            "console",
            notice="The acknowledgement expired: the incident is firing again.",
        )
        return [
            NewDelivery(c, f"incident:{state.id}", encode_message(message), now)
            for c in self.mirrored
        ]
