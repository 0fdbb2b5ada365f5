"""Which channels (and recipients) an alert goes to: severity defaults, per-organization overrides.

The two routing tables (``notification_preferences``, ``alert_configurations``) are read whole
into memory; triggers bump ``bridge_state.config_version`` on every change, and each bridge
polls that one value and reloads when it moved, so a change reaches every replica within
``config_refresh_seconds``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.model import SEVERITY_RANK, Alert
from bridge.storage import ConfigurationRow, PreferenceRow, Storage

log = logging.getLogger(__name__)

DEFAULT_CHANNELS: dict[str, tuple[str, ...]] = {
    "critical": ("slack", "email", "pagerduty", "sms"),
    "high": ("slack", "email"),
    "medium": ("slack",),
    "low": ("email",),
}
CONSOLE = "console"
APPRISE = "apprise"  # added to a severity's channels when APPRISE_URLS_<SEVERITY> is set


@dataclass(frozen=True)
class Route:
    channel: str
    recipients: tuple[str, ...] = ()
    not_before: datetime | None = None  # held back by quiet hours until then


def wanted_channels(
    severity: str, prefs: PreferenceRow | None, *, apprise: bool = False
) -> tuple[str, ...]:
    """The channels a severity asks for (the contract's table, Apprise when the severity has
    URLs), or the organization's preferences instead; configured or not."""
    wanted: Iterable[str] = DEFAULT_CHANNELS.get(severity, DEFAULT_CHANNELS["low"])
    if apprise:
        wanted = (*wanted, APPRISE)
    if prefs is not None and prefs.channels is not None:
        if isinstance(prefs.channels, list):
            wanted = prefs.channels
        elif isinstance(prefs.channels, dict) and severity in prefs.channels:
            wanted = prefs.channels[severity] or ()
    return tuple(dict.fromkeys(wanted))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown timezone in notification_preferences", extra={"timezone": name})
        return ZoneInfo("UTC")


def quiet_until(start: time | None, end: time | None, tz: str, now: datetime) -> datetime | None:
    """When the quiet period containing ``now`` ends, or None if ``now`` is not in one."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(_zone(tz))
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_today = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_today <= local:
        end_today = (local + timedelta(days=1)).replace(
            hour=end.hour, minute=end.minute, second=0, microsecond=0
        )
    return end_today.astimezone(now.tzinfo)


class Router:
    """Routes alerts using the channels that are configured (``available``)."""

    def __init__(
        self,
        available: Iterable[str],
        *,
        apprise_urls: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.available = frozenset(available)
        # severity -> its Apprise URLs, the recipients of its ``apprise`` route
        self.apprise_urls = {s: urls for s, urls in (apprise_urls or {}).items() if urls}
        self.console_only = self.available == {CONSOLE}
        self.version: str | None = None
        self._prefs: dict[str, PreferenceRow] = {}
        self._configs: dict[tuple[str, str], ConfigurationRow] = {}
        self._routes: dict[tuple[str, str | None], tuple[tuple[str, tuple[str, ...]], ...]] = {}

    def load(
        self, prefs: Iterable[PreferenceRow], configs: Iterable[ConfigurationRow], version: str
    ) -> None:
        self._prefs = {p.organization_id: p for p in prefs}
        self._configs = {(c.organization_id, c.alertname): c for c in configs}
        self._routes = {}
        self.version = version

    async def refresh(self, storage: Storage, *, force: bool = False) -> bool:
        """Reload when the configuration version moved; True when it reloaded."""
        version = await storage.config_version()
        if version == self.version and not force:
            return False
        prefs, configs = await storage.load_routing()
        self.load(prefs, configs, version)
        log.info("routing configuration loaded", extra={"version": version})
        return True

    def thresholds(self) -> list[tuple[str, str, float]]:
        return [
            (c.organization_id, c.alertname, c.threshold)
            for c in self._configs.values()
            if c.threshold is not None and c.enabled
        ]

    def preferences(self, organization_id: str | None) -> PreferenceRow | None:
        return self._prefs.get(organization_id) if organization_id else None

    def suppression(self, alert: Alert) -> str | None:
        """Why this alert notifies nobody (``disabled``, ``min_severity``), or None."""
        org = alert.organization_id
        if org:
            config = self._configs.get((org, alert.alertname))
            if config is not None and not config.enabled:
                return "disabled"
            prefs = self._prefs.get(org)
            if prefs is not None and SEVERITY_RANK[alert.severity] < SEVERITY_RANK.get(
                prefs.min_severity, 0
            ):
                return "min_severity"
        return None

    def wanted(self, severity: str, prefs: PreferenceRow | None) -> tuple[str, ...]:
        """The channels the severity (and the organization's preferences) ask for, configured
        or not."""
        return wanted_channels(severity, prefs, apprise=severity in self.apprise_urls)

    def unconfigured(self, alert: Alert) -> tuple[str, ...]:
        """The channels this alert's severity asks for that this bridge has not configured."""
        wanted = self.wanted(alert.severity, self.preferences(alert.organization_id))
        return tuple(c for c in wanted if c not in self.available)

    def channels_for(self, severity: str, prefs: PreferenceRow | None) -> tuple[str, ...]:
        if self.console_only:
            return (CONSOLE,)
        return tuple(c for c in self.wanted(severity, prefs) if c in self.available)

    def _recipients(
        self, channel: str, severity: str, prefs: PreferenceRow | None
    ) -> tuple[str, ...]:
        """The organization's recipients for the channel; for Apprise, else the severity's URLs
        (an organization naming Apprise for a severity without URLs has none: no route)."""
        own = tuple(prefs.recipients.get(channel) or ()) if prefs is not None else ()
        if channel == APPRISE and not own:
            return self.apprise_urls.get(severity, ())
        return own

    def routes(self, alert: Alert, now: datetime) -> list[Route]:
        org = alert.organization_id
        prefs = self.preferences(org)
        cache_key = (alert.severity, org if prefs is not None else None)
        targets = self._routes.get(cache_key)
        if targets is None:
            targets = self._routes[cache_key] = tuple(
                (channel, recipients)
                for channel in self.channels_for(alert.severity, prefs)
                if (recipients := self._recipients(channel, alert.severity, prefs))
                or channel != APPRISE
            )
        not_before = None
        if (
            prefs is not None
            and prefs.quiet_hours_start is not None
            and alert.severity != "critical"
        ):
            not_before = quiet_until(
                prefs.quiet_hours_start, prefs.quiet_hours_end, prefs.timezone, now
            )
        return [Route(channel, recipients, not_before) for channel, recipients in targets]
