"""Dead man's switch on Alertmanager's always-firing ``Watchdog`` alert.

The Watchdog never notifies anyone; its arrival only refreshes ``watchdog_last_seen``. When it
stays away longer than ``after_seconds`` the bridge itself pages every critical channel with
"alerting pipeline is down", and resolves that page when the Watchdog returns. The switch's
state lives in ``bridge_state`` and flips with compare-and-set, so with several replicas
exactly one of them sends each page and each resolve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bridge.codec import encode_message
from bridge.metrics import BridgeMetrics
from bridge.model import Alert, Message
from bridge.storage import NewDelivery, Storage, Transaction

log = logging.getLogger(__name__)

WATCHDOG = "Watchdog"
LAST_SEEN = "watchdog_last_seen"
STATE = "deadman"
SINCE = "deadman_since"
FINGERPRINT = "passiton-bridge-deadman"
GROUP_KEY = "passiton-bridge/deadman"


class DeadMansSwitch:
    def __init__(
        self,
        after_seconds: float,
        channels: Callable[[], tuple[str, ...]],
        metrics: BridgeMetrics,
        started_at: datetime | None = None,
    ) -> None:
        self.after = timedelta(seconds=after_seconds)
        # A bridge that was itself down has not heard the Watchdog either; give Alertmanager a
        # full period after this start before concluding the pipeline is broken.
        self.started_at = started_at
        self.enabled = after_seconds > 0
        self.channels = channels
        self.metrics = metrics

    def _deliveries(self, status: str, since: datetime, now: datetime) -> list[NewDelivery]:
        alert = Alert(
            fingerprint=FINGERPRINT,
            status=status,
            labels={
                "alertname": "AlertingPipelineDown",
                "severity": "critical",
                "category": "system",
            },
            annotations={
                "summary": "Alerting pipeline is down"
                if status == "firing"
                else "Alerting pipeline is back",
                "description": (
                    f"The Watchdog alert has not reached the bridge since "
                    f"{(since - self.after).isoformat()}: Prometheus, Alertmanager or the path "
                    "between them and the bridge is broken, so other alerts may be lost."
                    if status == "firing"
                    else "The Watchdog alert arrives again; alerts are flowing."
                ),
            },
            starts_at=since,
            ends_at=now if status == "resolved" else None,
        )
        message = Message(
            group_key=GROUP_KEY,
            status=status,
            receiver="passiton-bridge",
            alerts=(alert,),
            common_labels=dict(alert.labels),
        )
        payload = encode_message(message)
        return [NewDelivery(c, GROUP_KEY, payload, now) for c in self.channels()]

    async def on_watchdog(self, tx: Transaction, now: datetime) -> list[NewDelivery]:
        """The Watchdog arrived (inside the notification's transaction)."""
        await tx.set_state(LAST_SEEN, now.isoformat(), now)
        if not await tx.compare_and_set_state(STATE, "down", "ok", now):
            return []
        since = await tx.get_state(SINCE)
        log.warning("watchdog is back; resolving the alerting-pipeline-down page")
        return self._deliveries("resolved", datetime.fromisoformat(since) if since else now, now)

    async def check(self, storage: Storage, now: datetime) -> int:
        """Page once when the Watchdog is overdue; returns the deliveries queued."""
        deliveries: list[NewDelivery] = []
        async with storage.transaction() as tx:
            await tx.init_state(LAST_SEEN, now.isoformat(), now)
            await tx.init_state(STATE, "ok", now)
            last_seen = datetime.fromisoformat(await tx.get_state(LAST_SEEN) or now.isoformat())
            reference = max(last_seen, self.started_at or last_seen)
            overdue = self.enabled and now - reference > self.after
            if overdue and await tx.compare_and_set_state(STATE, "ok", "down", now):
                since = reference + self.after
                await tx.set_state(SINCE, since.isoformat(), now)
                deliveries = self._deliveries("firing", since, now)
                await tx.insert_deliveries(deliveries, now)
                log.error(
                    "watchdog overdue: paging that the alerting pipeline is down",
                    extra={"last_seen": last_seen.isoformat()},
                )
        self.metrics.watchdog_last_seen.set(last_seen.timestamp())
        return len(deliveries)
