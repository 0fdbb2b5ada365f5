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


class InboundRequests:
    """Signed inbound requests already taken (``inbound_requests``: source, request id), on the
    database, so that every replica refuses a replay that reached another one."""

    def __init__(self, storage: Storage, clock: Callable[[], datetime]) -> None:
        self.storage = storage
        self.clock = clock

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
        return await InboundRequests(self.storage, self.clock).first_seen(source, request_id)

    async def forget(self, source: str, request_id: str) -> None:
        """Undo ``first_seen`` for a request that could not be carried out (it may be retried)."""
        await InboundRequests(self.storage, self.clock).forget(source, request_id)


CONTEXT = web.AppKey("public_context", PublicContext)
