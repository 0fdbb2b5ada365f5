"""SQLite: one transaction's reads and writes (``SqliteTransaction``) and the timestamp format."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, time
from typing import Any

import aiosqlite

from bridge.codec import decode_json, encode_json
from bridge.model import Alert, category_table
from bridge.storage.base import (
    ALERT_TABLES,
    AlertState,
    NewDelivery,
    NewEvents,
    NotificationRecord,
    Transaction,
    decode_channels,
    encode_channels,
)
from bridge.storage.rollup_sql import HistoryTable, upsert_sql

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CHUNK = 400  # rows per multi-row statement, well under SQLite's variable limit


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime(_FORMAT)


def parse_ts(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.strptime(value, _FORMAT).replace(tzinfo=UTC)


def parse_time(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteTransaction(Transaction):
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def store_alerts(
        self, alerts: Sequence[Alert], keys: Sequence[str], now: datetime
    ) -> NewEvents:
        rows = [
            (
                a.fingerprint,
                ts(a.starts_at),
                a.status,
                a.alertname,
                a.severity,
                a.organization_id,
                a.summary,
                a.description,
                encode_json(a.labels),
                encode_json(a.annotations),
                a.generator_url,
                ts(a.ends_at),
                ts(now),
                ts(now),
            )
            for a in alerts
        ]
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for alert, row in zip(alerts, rows, strict=True):
            by_table.setdefault(category_table(alert.category), []).append(row)
        changed: set[tuple[str, str, str]] = set()
        for table in sorted(by_table):
            for chunk in _chunks(by_table[table], 200):
                values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
                cursor = await self.db.execute(
                    f"""
                    INSERT INTO {table} (fingerprint, starts_at, status, alertname, severity,
                        organization_id, summary, description, labels, annotations,
                        generator_url, ends_at, received_at, updated_at)
                    VALUES {values}
                    ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
                        status = excluded.status, ends_at = excluded.ends_at,
                        annotations = excluded.annotations, summary = excluded.summary,
                        description = excluded.description, updated_at = excluded.updated_at,
                        held_until = NULL
                    WHERE {table}.status = 'firing' AND (excluded.status = 'resolved'
                        OR {table}.held_until <= excluded.updated_at)
                    RETURNING fingerprint, starts_at, status
                    """,  # noqa: S608 - table is one of ALERT_TABLES
                    [v for row in chunk for v in row],
                )
                changed.update((r[0], r[1], r[2]) for r in await cursor.fetchall())
        indexes = [i for i, row in enumerate(rows) if (row[0], row[1], row[2]) in changed]
        states: dict[str, AlertState] = {}
        for chunk in _chunks(sorted({keys[i] for i in indexes})):
            marks = ", ".join("?" * len(chunk))
            cursor = await self.db.execute(
                "SELECT alert_key, window_started_at, cycles, flapping, last_event_at, last_alert,"  # noqa: S608
                f" channels FROM alert_fatigue WHERE alert_key IN ({marks})",
                chunk,
            )
            for r in await cursor.fetchall():
                states[r[0]] = _state(r[1:])
        return NewEvents(indexes, states)

    async def hold_alerts(self, holds: Sequence[tuple[str, str, datetime, datetime]]) -> None:
        for table, fingerprint, starts_at, until in holds:
            if table not in ALERT_TABLES:
                raise ValueError(f"not an alert table: {table}")
            await self.db.execute(
                f"UPDATE {table} SET held_until = ? WHERE fingerprint = ? AND starts_at = ?",  # noqa: S608
                (ts(until), fingerprint, ts(starts_at)),
            )

    async def save_states(self, rows: dict[str, AlertState]) -> None:
        await self.db.executemany(
            """
            INSERT INTO alert_fatigue (alert_key, window_started_at, cycles, flapping,
                last_event_at, last_alert, channels)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (alert_key) DO UPDATE SET
                window_started_at = excluded.window_started_at, cycles = excluded.cycles,
                flapping = excluded.flapping, last_event_at = excluded.last_event_at,
                last_alert = excluded.last_alert, channels = excluded.channels
            """,
            [
                (
                    k,
                    ts(v.window_started_at),
                    v.cycles,
                    int(v.flapping),
                    ts(v.last_event_at or v.window_started_at),
                    encode_json(v.last_alert) if v.last_alert else None,
                    encode_channels(v),
                )
                for k, v in rows.items()
            ],
        )

    async def insert_deliveries(self, rows: Sequence[NewDelivery], now: datetime) -> None:
        await write_deliveries(self.db, rows, now)

    async def insert_notification(self, record: NotificationRecord, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO alert_notifications (group_key, receiver, status, alert_count,"
            " new_event_count, delivery_count, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.group_key,
                record.receiver,
                record.status,
                record.alert_count,
                record.new_event_count,
                record.delivery_count,
                ts(now),
            ),
        )

    async def get_state(self, key: str) -> str | None:
        cursor = await self.db.execute("SELECT value FROM bridge_state WHERE key = ?", (key,))
        row = await cursor.fetchone()
        return row[0] if row else None

    async def set_state(self, key: str, value: str, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO bridge_state (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (key, value, ts(now)),
        )

    async def init_state(self, key: str, value: str, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO bridge_state (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO NOTHING",
            (key, value, ts(now)),
        )

    async def compare_and_set_state(
        self, key: str, expected: str, value: str, now: datetime
    ) -> bool:
        cursor = await self.db.execute(
            "UPDATE bridge_state SET value = ?, updated_at = ? WHERE key = ? AND value = ?",
            (value, ts(now), key, expected),
        )
        return cursor.rowcount == 1

    async def claim_settled_flaps(self, quiet_since: datetime) -> list[tuple[str, AlertState]]:
        cursor = await self.db.execute(
            """
            UPDATE alert_fatigue SET flapping = 0, cycles = 0, window_started_at = ?
            WHERE flapping AND last_event_at < ?
            RETURNING alert_key, window_started_at, cycles, flapping, last_event_at, last_alert,
                      channels
            """,
            (ts(quiet_since), ts(quiet_since)),
        )
        return [(r[0], _state(r[1:])) for r in await cursor.fetchall()]

    async def upsert_history(
        self, table: HistoryTable, rows: Sequence[Mapping[str, Any]], now: datetime
    ) -> int:
        args = [
            [
                *(
                    encode_json(r[c])
                    if c in table.json_columns
                    else ts(r[c])
                    if c == "hour"
                    else r[c]
                    for c in table.columns
                ),
                ts(now),
            ]
            for r in rows
        ]
        await self.db.executemany(upsert_sql(table, "sqlite"), args)
        return len(rows)


def _state(r: Sequence[Any]) -> AlertState:
    return AlertState(
        parse_ts(r[0]),
        r[1],
        bool(r[2]),
        parse_ts(r[3]),
        decode_json(r[4]),
        decode_channels(r[5]),
    )


async def write_deliveries(
    db: aiosqlite.Connection, rows: Sequence[NewDelivery], now: datetime
) -> list[int]:
    ids = []
    for chunk in _chunks(rows, 200):
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
        params = [
            p
            for r in chunk
            for p in (r.channel, r.group_key, r.message.decode(), ts(now), ts(r.next_attempt_at))
        ]
        cursor = await db.execute(
            "INSERT INTO alert_deliveries (channel, group_key, message, created_at,"  # noqa: S608
            f" next_attempt_at) VALUES {values} RETURNING id",
            params,
        )
        ids.extend(r[0] for r in await cursor.fetchall())
    return ids
