"""SQLite storage through aiosqlite: the embedded default (one file in the state directory).

One connection, WAL journal, ``synchronous=FULL`` so an acknowledged notification survives a
crash; every write transaction is ``BEGIN IMMEDIATE`` (single writer), which is also how the
delivery claim stays exclusive when several bridge processes share one file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bridge.codec import decode_json
from bridge.storage.base import (
    ALERT_TABLES,
    ClaimedDelivery,
    ConfigurationRow,
    NewDelivery,
    PreferenceRow,
    Storage,
    StorageUnavailable,
    Transaction,
    load_migrations,
)
from bridge.storage.sqlite_tx import SqliteTransaction, parse_time, parse_ts, ts, write_deliveries


def sqlite_path(url: str) -> str:
    path = url.removeprefix("sqlite://")
    path = path.removeprefix("/") if path.startswith("/") else path
    return path or ":memory:"


class SqliteStorage(Storage):
    kind = "sqlite"

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=30)
            await self._db.execute("PRAGMA journal_mode = WAL")
            await self._db.execute("PRAGMA synchronous = FULL")
            await self._db.execute("PRAGMA busy_timeout = 30000")
            await self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot open {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @asynccontextmanager
    async def _locked(self, *, write: bool) -> AsyncIterator[aiosqlite.Connection]:
        if self._db is None:
            raise StorageUnavailable("storage is not open")
        async with self._lock:
            db = self._db
            try:
                if write:
                    await db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if write:
                        await db.execute("ROLLBACK")
                    raise
                if write:
                    await db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                raise StorageUnavailable(f"sqlite: {exc}") from exc

    async def ping(self) -> None:
        async with self._locked(write=False) as db:
            await db.execute("SELECT 1")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._locked(write=True) as db:
            yield SqliteTransaction(db)

    async def applied_migrations(self) -> list[str]:
        async with self._locked(write=False) as db:
            cursor = await db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            )
            if await cursor.fetchone() is None:
                return []
            cursor = await db.execute("SELECT version FROM schema_migrations")
            return [r[0] for r in await cursor.fetchall()]

    async def migrate(self) -> list[str]:
        applied_now = []
        async with self._locked(write=False) as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY,"
                " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
            )
            for migration in load_migrations("sqlite"):
                cursor = await db.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                )
                if await cursor.fetchone() is not None:
                    continue
                version = migration.version.replace("'", "''")
                # executescript commits on its own; BEGIN IMMEDIATE makes file and record atomic
                # and serialises concurrent migrators (the second sees the version and skips).
                await db.executescript(
                    "BEGIN IMMEDIATE;\n"
                    f"{migration.sql}\n"
                    f"INSERT INTO schema_migrations (version) VALUES ('{version}')"
                    " ON CONFLICT DO NOTHING;\n"
                    "COMMIT;"
                )
                applied_now.append(migration.version)
        return applied_now

    async def claim_deliveries(
        self,
        channel: str,
        limit: int,
        now: datetime,
        lease_until: datetime,
        ids: Sequence[int] | None = None,
    ) -> list[ClaimedDelivery]:
        id_filter = ""
        params: list[Any] = [channel, ts(now), ts(now)]
        if ids is not None:
            id_filter = f" AND id IN ({', '.join('?' * len(ids))})" if ids else " AND 0"
            params.extend(ids)
        params.append(limit)
        async with self._locked(write=True) as db:
            cursor = await db.execute(
                f"""
                UPDATE alert_deliveries SET locked_until = ?, attempts = attempts + 1
                WHERE id IN (
                    SELECT id FROM alert_deliveries
                    WHERE state = 'pending' AND channel = ? AND next_attempt_at <= ?
                      AND (locked_until IS NULL OR locked_until <= ?){id_filter}
                    ORDER BY next_attempt_at LIMIT ?
                )
                RETURNING id, channel, message, attempts, created_at
                """,  # noqa: S608
                [ts(lease_until), *params],
            )
            rows = await cursor.fetchall()
        return [ClaimedDelivery(r[0], r[1], r[2], r[3], parse_ts(r[4])) for r in rows]

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        async with self._locked(write=True) as db:
            await db.executemany(
                "UPDATE alert_deliveries SET state = 'sent', finished_at = ?, locked_until = NULL"
                " WHERE id = ?",
                [(ts(now), i) for i in ids],
            )

    async def mark_retry(
        self, id: int, next_attempt_at: datetime, error: str, message: bytes | None = None
    ) -> None:
        async with self._locked(write=True) as db:
            await db.execute(
                "UPDATE alert_deliveries SET next_attempt_at = ?, locked_until = NULL,"
                " last_error = ?, message = COALESCE(?, message) WHERE id = ?",
                (ts(next_attempt_at), error, message.decode() if message else None, id),
            )

    async def mark_dead(self, id: int, now: datetime, error: str) -> None:
        async with self._locked(write=True) as db:
            await db.execute(
                "UPDATE alert_deliveries SET state = 'dead', finished_at = ?, locked_until = NULL,"
                " last_error = ? WHERE id = ?",
                (ts(now), error, id),
            )

    async def delivery_states(self, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        if not ids:
            return {}
        async with self._locked(write=False) as db:
            cursor = await db.execute(
                "SELECT id, state, last_error FROM alert_deliveries"  # noqa: S608
                f" WHERE id IN ({', '.join('?' * len(ids))})",
                list(ids),
            )
            return {r[0]: (r[1], r[2]) for r in await cursor.fetchall()}

    async def enqueue(self, rows: Sequence[NewDelivery], now: datetime) -> list[int]:
        async with self._locked(write=True) as db:
            return await write_deliveries(db, rows, now)

    async def queue_stats(self) -> tuple[int, datetime | None, dict[str, int]]:
        async with self._locked(write=False) as db:
            cursor = await db.execute(
                "SELECT count(*), min(created_at) FROM alert_deliveries WHERE state = 'pending'"
            )
            row = await cursor.fetchone()
            cursor = await db.execute(
                "SELECT channel, count(*) FROM alert_deliveries WHERE state = 'dead'"
                " GROUP BY channel"
            )
            dead = {r[0]: r[1] for r in await cursor.fetchall()}
        return row[0], parse_ts(row[1]), dead

    async def purge(self, cutoff: datetime) -> dict[str, int]:
        statements = {
            **{
                t: f"DELETE FROM {t} WHERE received_at < ? AND updated_at < ?"  # noqa: S608
                for t in ALERT_TABLES
            },
            "alert_notifications": "DELETE FROM alert_notifications WHERE received_at < ?",
            "alert_deliveries": "DELETE FROM alert_deliveries"
            " WHERE state <> 'pending' AND finished_at < ?",
            "alert_fatigue": "DELETE FROM alert_fatigue WHERE NOT flapping AND last_event_at < ?",
        }
        counts = {}
        async with self._locked(write=True) as db:
            for table, sql in statements.items():
                cursor = await db.execute(sql, (ts(cutoff),) * sql.count("?"))
                counts[table] = cursor.rowcount
        return counts

    async def load_routing(self) -> tuple[list[PreferenceRow], list[ConfigurationRow]]:
        async with self._locked(write=False) as db:
            cursor = await db.execute(
                "SELECT organization_id, channels, recipients, min_severity,"
                " quiet_hours_start, quiet_hours_end, timezone FROM notification_preferences"
            )
            prefs = await cursor.fetchall()
            cursor = await db.execute(
                "SELECT organization_id, alertname, threshold, enabled FROM alert_configurations"
            )
            configs = await cursor.fetchall()
        return (
            [
                PreferenceRow(
                    r[0],
                    decode_json(r[1]),
                    decode_json(r[2]) or {},
                    r[3],
                    parse_time(r[4]),
                    parse_time(r[5]),
                    r[6],
                )
                for r in prefs
            ],
            [ConfigurationRow(r[0], r[1], r[2], bool(r[3])) for r in configs],
        )

    async def config_version(self) -> str:
        async with self._locked(write=False) as db:
            cursor = await db.execute("SELECT value FROM bridge_state WHERE key = 'config_version'")
            row = await cursor.fetchone()
            return row[0] if row else "0"

    async def query(self, sql: str) -> list[dict[str, Any]]:
        async with self._locked(write=False) as db:
            cursor = await db.execute(sql)
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, r, strict=True)) for r in await cursor.fetchall()]

    async def execute(self, sql: str) -> None:
        async with self._locked(write=False) as db:
            await db.executescript(sql)
