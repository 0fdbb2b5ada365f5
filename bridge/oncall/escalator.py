"""The escalation engine: every tick, send the steps that are due.

One transaction per tick claims the due escalations (``FOR UPDATE SKIP LOCKED``), and for each
writes the step's deliveries into the outbox (sent by the channels' workers with the one retry
policy), who it notified, the incident's timeline and the walk's next due time, then commits:
a step is sent once whichever replica claims it, a crash before the commit leaves it due, one
after leaves it done. The clock is the bridge's (``clock``), so tests drive it.

Each tick first sweeps the incidents' timers (``bridge.oncall.timers``: acknowledgements whose
chosen end came re-open their incident and re-arm its walk, snoozes end), so the bridge runs
the escalator even without an on-call file (``config`` None: the sweep only). A step that comes
due while its incident is snoozed waits for the snooze's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime

from bridge.codec import decode_message, encode_message
from bridge.metrics import BridgeMetrics
from bridge.model import Message
from bridge.oncall.config import OncallConfig, Policy
from bridge.oncall.escalation import (
    VIA_CHANNEL,
    Page,
    Walk,
    acknowledgement_expired,
    after_step,
    pages,
    reply_hint,
)
from bridge.oncall.links import AckLinks
from bridge.oncall.schedule import Override
from bridge.oncall.timers import IncidentTimers
from bridge.storage import Storage, StorageUnavailable, Transaction
from bridge.storage.escalations import DueEscalation
from bridge.storage.outbox import insert_deliveries
from bridge.storage.types import NewDelivery

log = logging.getLogger(__name__)


class Escalator:
    """Walks the escalation policies of open incidents (see ``bridge.oncall.escalation``)."""

    def __init__(
        self,
        storage: Storage,
        config: OncallConfig | None,
        channels: Collection[str],
        metrics: BridgeMetrics,
        clock: Callable[[], datetime],
        *,
        links: AckLinks | None = None,
        push_tokens: AckLinks | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
        interval: float = 1.0,
        batch: int = 50,
        timers: IncidentTimers | None = None,
    ) -> None:
        self.storage = storage
        self.config = config
        self.channels = frozenset(channels)
        self.metrics = metrics
        self.clock = clock
        self.links = links
        self.push_tokens = push_tokens  # the Acknowledge tokens of push pages
        self.on_enqueued = on_enqueued
        self.interval = interval
        self.batch = batch
        self.timers = timers
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="escalator")

    def wake(self) -> None:
        """Look now (an incident was routed, an acknowledgement changed a walk)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_once() >= self.batch:
                    pass  # more were due than one tick takes
            except StorageUnavailable:
                log.warning("escalations wait for the database")
            except Exception:
                log.exception("escalation tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def run_once(self) -> int:
        """Run out the timers due, then send what is due now; the number of incidents whose
        timer ran out plus the escalations handled."""
        swept = await self.timers.run_once() if self.timers is not None else 0
        if self.config is None:
            return swept
        now = self.clock()
        enqueued = False
        async with self.storage.transaction() as tx:
            due = await tx.claim_due_escalations(now, self.batch)
            if not due:
                return swept
            overrides = await tx.overrides_at(now)
            for escalation in due:
                enqueued |= await self._advance(tx, escalation, overrides, now)
        if enqueued:
            self.on_enqueued()
        return swept + len(due)

    async def _advance(
        self,
        tx: Transaction,
        escalation: DueEscalation,
        overrides: Sequence[Override],
        now: datetime,
    ) -> bool:
        incident_id, walk = escalation.incident_id, escalation.walk
        assert self.config is not None
        policy = self.config.policies.get(escalation.policy_id)
        if escalation.incident_status == "resolved" or policy is None or not policy.steps:
            # resolved meanwhile, or the policy left the configuration: nothing more to send
            await tx.save_walk(incident_id, Walk("done", walk.step, walk.round, None), now)
            if policy is None and escalation.incident_status != "resolved":
                await tx.add_incident_event(
                    incident_id, "escalation_stopped", {"policy": escalation.policy_id}, now
                )
            return False
        if walk.state == "acknowledged":
            if escalation.incident_status != "acknowledged":  # re-opened or resolved by hand
                await tx.save_walk(incident_id, replace(walk, next_at=None), now)
                return False
            walk = acknowledgement_expired(policy, now)
            await tx.set_incident_status(incident_id, "firing", now)
            await tx.add_incident_event(
                incident_id,
                "acknowledgement_expired",
                {"policy": policy.id, "after_seconds": _seconds(policy)},
                now,
            )
            self.metrics.escalation_events.labels(event="acknowledgement_expired").inc()
        elif walk.state != "active" or escalation.incident_status == "acknowledged":
            await tx.save_walk(incident_id, replace(walk, next_at=None), now)
            return False
        if escalation.snoozed_until is not None and escalation.snoozed_until > now:
            # snoozed: the step waits for the snooze's end (the sweep ends it then)
            await tx.save_walk(incident_id, replace(walk, next_at=escalation.snoozed_until), now)
            self.metrics.escalation_events.labels(event="held_by_snooze").inc()
            return False
        sent, missing = pages(self.config, policy, walk.step, now, overrides, self.channels)
        base = decode_message(escalation.message)
        deliveries = [
            NewDelivery(
                VIA_CHANNEL[p.via],
                f"incident:{incident_id}",
                encode_message(self._page_message(base, p, walk, policy, incident_id)),
                now,
            )
            for p in sent
        ]
        if deliveries:
            await insert_deliveries(tx.conn, deliveries, now, returning=False)
        await tx.record_pages(incident_id, sent, walk.step, walk.round, now)
        await tx.add_incident_event(
            incident_id,
            "escalation_step",
            {
                "policy": policy.id,
                "step": walk.step + 1,
                "steps": len(policy.steps),
                "round": walk.round + 1,
                "notified": [{"person": p.person_id, "via": p.via} for p in sent],
                "unreachable": [
                    {"person": m.person_id, "via": m.via, "reason": m.reason} for m in missing
                ],
            },
            now,
        )
        for page in sent:
            self.metrics.escalation_pages.labels(via=page.via).inc()
        self.metrics.escalation_events.labels(event="step").inc()
        await tx.save_walk(incident_id, after_step(policy, walk, now), now)
        return bool(deliveries)

    def _page_message(
        self, base: Message, page: Page, walk: Walk, policy: Policy, incident_id: int
    ) -> Message:
        step = f"step {walk.step + 1} of {len(policy.steps)}"
        if walk.round:
            step += f", repeat {walk.round}"
        notice = f"You are on call for this incident ({step})."
        if page.via == "sms":
            notice += " " + reply_hint(incident_id)
        elif page.via == "email" and self.links is not None:
            notice += f" Acknowledge or resolve: {self.links.url(incident_id, page.person_id)}"
        if page.via == "slack":
            return replace(base, recipients=(), mentions=(page.address,), notice=notice)
        if page.via == "push" and self.push_tokens is not None:
            token = self.push_tokens.token(incident_id, page.person_id)
            return replace(base, recipients=(page.address,), notice=notice, ack_token=token)
        return replace(base, recipients=(page.address,), notice=notice)


def _seconds(policy: Policy) -> float | None:
    return policy.ack_timeout.total_seconds() if policy.ack_timeout else None
