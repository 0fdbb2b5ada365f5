"""The alert and notification values the bridge passes from webhook to storage to channels."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low")
# low=0 .. critical=3
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}
CATEGORIES = ("payment", "widget", "traffic", "dashboard", "system")


# A Slack user id (U…, or W… on Enterprise Grid): what a mention may name, nothing else.
_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def slack_user_ids(values: Iterable[str]) -> tuple[str, ...]:
    """The values that are Slack user ids (``U0ALICE``, ``W012ABC``), once each, in order;
    anything else (``<!channel>``, names, channel ids) is dropped."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and _SLACK_USER_ID.fullmatch(value):
            seen.setdefault(value, None)
    return tuple(seen)


def category_table(category: str) -> str:
    """The alert table a category is stored in; anything unknown goes to system_alerts."""
    return f"{category}_alerts" if category in CATEGORIES else "system_alerts"


@dataclass(frozen=True)
class Alert:
    """One alert of an Alertmanager notification, as sanitised by the bridge."""

    fingerprint: str
    status: str  # "firing" | "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str = ""

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        severity = self.labels.get("severity", "")
        return severity if severity in SEVERITIES else "low"

    @property
    def category(self) -> str:
        return self.labels.get("category", "system")

    @property
    def organization_id(self) -> str | None:
        return self.labels.get("organization_id") or None

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", "") or self.alertname

    @property
    def description(self) -> str:
        return self.annotations.get("description", "")

    @property
    def runbook_url(self) -> str:
        return self.annotations.get("runbook_url", "")


@dataclass(frozen=True)
class Message:
    """What one channel sends for one notification group: one message listing its alerts."""

    group_key: str
    status: str  # "firing" | "resolved"
    receiver: str
    alerts: tuple[Alert, ...]
    common_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    recipients: tuple[str, ...] = ()  # per-organization override; empty = channel default
    notice: str = ""  # e.g. "flapping": a bridge-generated note shown above the alerts
    # The whole Alertmanager group's status ("" outside a notification): a channel keyed by the
    # group (PagerDuty with PAGERDUTY_DEDUP_KEY=group) resolves only when the group has.
    group_status: str = ""
    # The incident this message pages (None: an alert stored before incidents existed).
    incident_id: int | None = None
    incident_title: str = ""
    # A person's action on the incident, mirrored where it was paged ("acknowledge", "resolve":
    # PagerDuty acknowledges or resolves its incident; "merged": the incident was absorbed by
    # another, a one-line note in the team's channels, bridge.merging); "" for a page.
    action: str = ""
    # Slack user ids to notify (the on-call engine's "you are paged"); anything that is not a
    # user id is dropped here, so no channel ever renders a broadcast from it.
    mentions: tuple[str, ...] = ()
    # A push page's signed, expiring, single-use acknowledgement token for the person paged
    # (bridge.oncall.links): the notification's "Acknowledge" action posts it back.
    ack_token: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mentions", slack_user_ids(self.mentions))

    @property
    def severity(self) -> str:
        return max((a.severity for a in self.alerts), key=SEVERITY_RANK.__getitem__, default="low")

    @property
    def title(self) -> str:
        firing = sum(1 for a in self.alerts if a.status == "firing")
        first = self.alerts[0].alertname if self.alerts else ""
        name = self.common_labels.get("alertname") or first
        state = "FIRING" if self.status == "firing" else "RESOLVED"
        count = f":{firing}" if self.status == "firing" else ""
        if self.incident_id is not None:
            name = f"Incident #{self.incident_id}: {self.incident_title or name}"
        if self.action == "merged":  # an incident absorbed by another: no alerts of its own
            return f"[MERGED] {name}"
        return f"[{state}{count}] [{self.severity.upper()}] {name}"


@dataclass(frozen=True)
class FatigueState:
    """The last notification of one alert on one channel."""

    last_sent_at: datetime
    last_severity_rank: int
    last_starts_at: datetime
    last_fingerprint: str = ""

    def same_instance(self, fingerprint: str, starts_at: datetime) -> bool:
        return self.last_fingerprint == fingerprint and self.last_starts_at == starts_at


@dataclass
class AlertState:
    """Alert-fatigue state of one alert (its labels without severity)."""

    window_started_at: datetime
    cycles: int = 0
    flapping: bool = False
    last_event_at: datetime | None = None
    last_alert: dict[str, Any] | None = None
    channels: dict[str, FatigueState] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """One parsed and sanitised Alertmanager notification (one alert group)."""

    group_key: str
    status: str
    receiver: str
    alerts: tuple[Alert, ...]
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    external_url: str
    truncated_alerts: int = 0
    duplicates: int = 0  # alerts sent twice in the notification, kept once
    # alerts left out, with the reason (a time no alert can have: before 2000, after next year)
    skipped: tuple[str, ...] = ()
