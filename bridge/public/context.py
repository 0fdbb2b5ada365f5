"""What the public listener's handlers share: the actions, the people, the store, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from bridge.metrics import BridgeMetrics
from bridge.oncall.actions import IncidentActions
from bridge.oncall.config import OncallConfig
from bridge.oncall.links import AckLinks
from bridge.storage import Storage, StorageUnavailable


@dataclass
class PublicContext:
    actions: IncidentActions
    storage: Storage
    oncall: OncallConfig
    metrics: BridgeMetrics
    clock: Callable[[], datetime]
    public_url: str  # BRIDGE_PUBLIC_URL: what Twilio signs, the base of links
    twilio_auth_token: str | None = field(default=None, repr=False)
    pagerduty_webhook_secret: str | None = field(default=None, repr=False)
    links: AckLinks | None = None
    calendar_secret: bytes = field(default=b"", repr=False)  # the iCalendar feeds' key

    def count(self, endpoint: str, outcome: str) -> None:
        self.metrics.public_requests.labels(endpoint=endpoint, outcome=outcome).inc()

    async def first_seen(self, source: str, request_id: str) -> bool:
        """Record a verified request's id; False for a replay (seen before, by any replica)."""
        async with self.storage.transaction() as tx:
            return await tx.first_seen(source, request_id[:200], self.clock())

    async def forget(self, source: str, request_id: str) -> None:
        """Undo ``first_seen`` for a request that could not be carried out (it may be retried)."""
        try:
            async with self.storage.transaction() as tx:
                await tx.forget_inbound(source, request_id[:200])
        except StorageUnavailable:
            pass


CONTEXT = web.AppKey("public_context", PublicContext)
