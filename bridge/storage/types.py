"""The values the storage package takes and returns (rows, records, the alert tables)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from bridge.codec import decode_json, encode_json
from bridge.model import AlertState, FatigueState

ALERT_TABLES = (
    "payment_alerts",
    "widget_alerts",
    "traffic_alerts",
    "dashboard_alerts",
    "system_alerts",
)


class StorageUnavailable(Exception):
    """The database cannot be reached (or refuses work) right now; try again later."""


def encode_channels(state: AlertState) -> str:
    """An alert's per-channel fatigue state as the JSON stored in ``alert_state.channels``."""
    return encode_json(
        {
            name: [
                s.last_sent_at.timestamp(),
                s.last_severity_rank,
                s.last_starts_at.isoformat(),
                s.last_fingerprint,
            ]
            for name, s in state.channels.items()
        }
    )


def decode_channels(raw: str | bytes | None) -> dict[str, FatigueState]:
    """The inverse of ``encode_channels``."""
    return {
        name: FatigueState(
            datetime.fromtimestamp(sent, UTC), rank, datetime.fromisoformat(starts), fingerprint
        )
        for name, (sent, rank, starts, fingerprint) in (decode_json(raw) or {}).items()
    }


@dataclass(frozen=True)
class NewEvents:
    """What ``store_alerts`` learnt: which alerts were news (inserted, or moved from firing to
    resolved) and the fatigue state of their alert keys."""

    indexes: list[int]
    states: dict[str, AlertState]


@dataclass(frozen=True)
class NewDelivery:
    channel: str
    group_key: str
    message: bytes
    next_attempt_at: datetime


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    channel: str
    message: bytes | str
    attempts: int
    created_at: datetime
    first_attempt_at: datetime | None = None  # None until a send failed once


@dataclass(frozen=True)
class NotificationRecord:
    group_key: str
    receiver: str
    status: str
    alert_count: int
    new_event_count: int
    delivery_count: int


@dataclass(frozen=True)
class PreferenceRow:
    organization_id: str
    channels: Any  # None, a list of channel names, or {severity: [channel, ...]}
    recipients: dict[str, list[str]]
    min_severity: str
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    timezone: str


@dataclass(frozen=True)
class ConfigurationRow:
    organization_id: str
    alertname: str
    threshold: float | None
    enabled: bool
