"""The one storage interface of the bridge; PostgreSQL and SQLite implement it.

Everything the webhook writes for one notification happens inside one ``transaction()``; the
decisions in between (routing, fatigue) are plain Python working on what the transaction read.
Deduplication is done by the database (unique keys and ``ON CONFLICT DO NOTHING``), never by
reading first, so concurrent replicas cannot both win.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, time
from importlib import resources
from typing import Any

from bridge.codec import decode_json, encode_json
from bridge.model import Alert, AlertState, FatigueState
from bridge.storage.rollup_sql import HistoryTable

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


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The packaged migrations of one dialect, in version order."""
    folder = resources.files("bridge") / "migrations" / dialect
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [Migration(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


class Transaction(abc.ABC):
    """One database transaction; everything in it commits together or not at all."""

    @abc.abstractmethod
    async def store_alerts(
        self, alerts: Sequence[Alert], keys: Sequence[str], now: datetime
    ) -> NewEvents:
        """Upsert each alert into its category's table: a new (fingerprint, starts_at) is
        inserted, a resolve updates its firing row, anything else changes nothing. The alert
        tables' unique key is the deduplication; ``keys`` (alert keys) run parallel to alerts."""

    @abc.abstractmethod
    async def save_states(self, rows: dict[str, AlertState]) -> None: ...

    @abc.abstractmethod
    async def hold_alerts(self, holds: Sequence[tuple[str, str, datetime, datetime]]) -> None:
        """Mark firing alerts the cooldown held back; a repeat after ``held_until`` is news."""

    @abc.abstractmethod
    async def insert_deliveries(self, rows: Sequence[NewDelivery], now: datetime) -> None: ...

    @abc.abstractmethod
    async def insert_notification(self, record: NotificationRecord, now: datetime) -> None: ...

    async def write_notification(
        self,
        states: dict[str, AlertState],
        deliveries: Sequence[NewDelivery],
        record: NotificationRecord,
        now: datetime,
        holds: Sequence[tuple[str, str, datetime, datetime]] = (),
    ) -> None:
        """Every write of one notification after its alerts (a backend may batch them);
        ``holds`` are (table, fingerprint, starts_at, held_until) of alerts the cooldown held."""
        if holds:
            await self.hold_alerts(holds)
        if states:
            await self.save_states(states)
        if deliveries:
            await self.insert_deliveries(deliveries, now)
        await self.insert_notification(record, now)

    @abc.abstractmethod
    async def get_state(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def set_state(self, key: str, value: str, now: datetime) -> None: ...

    @abc.abstractmethod
    async def init_state(self, key: str, value: str, now: datetime) -> None:
        """Set the key only when it does not exist yet."""

    @abc.abstractmethod
    async def compare_and_set_state(
        self, key: str, expected: str, value: str, now: datetime
    ) -> bool:
        """Atomically change key from expected to value; True for exactly one caller."""

    @abc.abstractmethod
    async def claim_settled_flaps(self, quiet_since: datetime) -> list[tuple[str, AlertState]]:
        """Clear the flapping flag of alerts unchanged since quiet_since; returns those cleared."""

    @abc.abstractmethod
    async def upsert_history(
        self, table: HistoryTable, rows: Sequence[Mapping[str, Any]], now: datetime
    ) -> int:
        """Insert or update history ``rows`` (every column but ``updated_at``); their count."""


class Storage(abc.ABC):
    """A database holding the alert tables, the delivery outbox and the bridge's state."""

    kind: str

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    @abc.abstractmethod
    async def applied_migrations(self) -> list[str]: ...

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply the migrations not applied yet, in order; returns their versions."""

    async def pending_migrations(self) -> list[str]:
        applied = set(await self.applied_migrations())
        return [m.version for m in load_migrations(self.kind) if m.version not in applied]

    @abc.abstractmethod
    async def claim_deliveries(
        self,
        channel: str,
        limit: int,
        now: datetime,
        lease_until: datetime,
        ids: Sequence[int] | None = None,
    ) -> list[ClaimedDelivery]:
        """Take up to limit due, unclaimed deliveries of a channel until lease_until."""

    @abc.abstractmethod
    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None: ...

    @abc.abstractmethod
    async def mark_retry(
        self, id: int, next_attempt_at: datetime, error: str, message: bytes | None = None
    ) -> None:
        """Schedule another attempt; ``message`` replaces the stored one (fewer recipients)."""

    @abc.abstractmethod
    async def mark_dead(self, id: int, now: datetime, error: str) -> None: ...

    @abc.abstractmethod
    async def delivery_states(self, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """(state, last_error) of the given deliveries."""

    @abc.abstractmethod
    async def enqueue(self, rows: Sequence[NewDelivery], now: datetime) -> list[int]:
        """Insert deliveries outside a notification (test alerts); returns their ids."""

    @abc.abstractmethod
    async def queue_stats(self) -> tuple[int, datetime | None, dict[str, int]]:
        """Pending deliveries, the oldest pending creation time, dead letters per channel."""

    @abc.abstractmethod
    async def purge(self, cutoff: datetime) -> dict[str, int]:
        """Delete alert history and finished bookkeeping older than cutoff; counts per table."""

    @abc.abstractmethod
    async def load_routing(self) -> tuple[list[PreferenceRow], list[ConfigurationRow]]: ...

    @abc.abstractmethod
    async def config_version(self) -> str: ...

    @abc.abstractmethod
    async def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a parameterless SELECT (operator tools and tests)."""

    @abc.abstractmethod
    async def execute(self, sql: str) -> None:
        """Run parameterless statements (operator tools and tests)."""

    async def __aenter__(self) -> Storage:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
