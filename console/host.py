"""The seam between the console and the process that serves it.

The console is a sub-application of the bridge process, but it does not know the bridge: it
sees a ``ConsoleHost``, exactly what its pages use. ``passiton_monitoring.bridge_process``
adapts the running bridge to it (the bridge never imports the console); tests may pass
anything with these members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry

from bridge.oncall.actions import IncidentActions
from bridge.oncall.config import OncallConfig
from bridge.oncall.links import AckLinks
from bridge.storage import Storage
from bridge.storage.console import ConsoleStore


@dataclass(frozen=True)
class WebPush:
    """Web Push as the console needs it: the key browsers subscribe with, and what checks the
    tokens a push notification's Acknowledge posts back."""

    public_key: str  # the VAPID public key, base64url
    tokens: AckLinks


class ConsoleHost(Protocol):
    """What the console needs of its host."""

    @property
    def storage(self) -> Storage:
        """The alert database; the console keeps its session-signing key in its state table."""
        ...

    @property
    def prometheus_url(self) -> str:
        """Prometheus, for the threshold read-back and the what-if."""
        ...

    @property
    def alertmanager_url(self) -> str:
        """The first Alertmanager, for links."""
        ...

    @property
    def alertmanager_urls(self) -> tuple[str, ...]:
        """Every Alertmanager (``ALERTMANAGER_URL``, comma-separated): silences are listed
        from, and made in, each of them."""
        ...

    @property
    def registry(self) -> CollectorRegistry:
        """Where the console's metrics go (the host's ``/metrics``)."""
        ...

    def queries(self) -> ConsoleStore:
        """The console's queries on the alert database."""
        ...

    def now(self) -> datetime:
        """The host's clock (timestamps of audit entries, acknowledgements, pages)."""
        ...

    def wake_delivery(self) -> None:
        """A dead-lettered delivery was queued again: deliver it now, not at the next poll."""
        ...

    async def reload_routing(self) -> None:
        """Preferences or thresholds changed: route (and export thresholds) by the new ones."""
        ...

    def exported_thresholds(self) -> list[tuple[str, str, float]]:
        """(organization, alert name, threshold) the host exports to Prometheus now."""
        ...

    def incident_actions(self) -> IncidentActions | None:
        """What acknowledges an incident for the bridge (its status, timeline, escalation and
        the mirrors to where it was paged), or None: the console's own query does the status
        and the timeline."""
        ...

    def oncall(self) -> OncallConfig | None:
        """The on-call file's people, schedules, policies and routes (``ONCALL_CONFIG``), or
        None when none is set."""
        ...

    def calendar_url(self, kind: str, ident: str) -> str:
        """The iCalendar feed of a ``schedule`` or ``person`` (its URL carries the feed's
        token), or "" when the bridge has no public URL (``BRIDGE_PUBLIC_URL``)."""
        ...

    def web_push(self) -> WebPush | None:
        """Web Push (``WEBPUSH_*`` with an on-call file), or None when it is off."""
        ...
