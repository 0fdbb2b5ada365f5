"""PostgreSQL (and Supabase) storage through asyncpg.

Pooler-safe: with ``?pgbouncer=true`` in the URL, or Supabase's transaction pooler port 6543,
the prepared-statement cache is off; the bridge never relies on session state (no SET, no
LISTEN, no session advisory locks, no temporary tables) in either mode. One notification's
writes are a handful of set-based statements (``unnest`` arrays), not a round trip per alert.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

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
from bridge.storage.postgres_tx import PostgresTransaction, write_deliveries

log = logging.getLogger(__name__)

# SQLSTATE classes meaning "the database is not there right now", as opposed to a bad query.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "3D000", "55000", "55006")
_MIGRATE_LOCK = 0x7061_7373_6974  # "passit"


def pooler_dsn(url: str) -> tuple[str, bool]:
    """The DSN for asyncpg without bridge-only parameters, and whether a pooler is in front."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    pooled = parts.port == 6543
    kept = []
    for key, value in query:
        if key.lower() == "pgbouncer":
            pooled = pooled or value.lower() in ("1", "true", "yes", "on")
        else:
            kept.append((key, value))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment)), pooled


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.InternalClientError,
    ):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return state.startswith(_UNAVAILABLE_SQLSTATES)
    return False


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except StorageUnavailable:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise


class PostgresStorage(Storage):
    kind = "postgres"

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.dsn, self.pooled = pooler_dsn(url)
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        # min_size=0: the bridge starts (and answers 503) even while the database is down.
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=0,
            max_size=self.pool_size,
            timeout=self.connect_timeout,
            command_timeout=30,
            statement_cache_size=0 if self.pooled else 256,
            max_inactive_connection_lifetime=60,
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await pool.close()
            except Exception:  # a pool whose server vanished cannot close gracefully
                pool.terminate()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StorageUnavailable("storage is not open")
        async with _translated(), self._pool.acquire(timeout=self.connect_timeout) as conn:
            yield conn

    async def ping(self) -> None:
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._pool is None:
            raise StorageUnavailable("storage is not open")
        async with _translated():
            # A pooled connection the server has dropped fails at BEGIN; nothing ran yet, so
            # one more try on a fresh connection is safe and hides a database restart.
            for attempt in (1, 2):
                conn = await self._pool.acquire(timeout=self.connect_timeout)
                tx = conn.transaction()
                try:
                    await tx.start()
                except BaseException as exc:  # cancellation included: the connection goes back
                    await self._pool.release(conn)
                    if attempt == 2 or not isinstance(exc, Exception) or not is_unavailable(exc):
                        raise
                    continue
                break
            try:
                yield PostgresTransaction(conn)
            except BaseException:
                try:
                    await tx.rollback()
                except Exception:  # the connection is gone; the server rolled back already
                    log.debug("rollback failed", exc_info=True)
                finally:
                    await self._pool.release(conn)
                raise
            try:
                await tx.commit()
            finally:
                await self._pool.release(conn)

    async def _ensure_migrations_table(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version TEXT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            ALTER TABLE schema_migrations ENABLE ROW LEVEL SECURITY;
            """
        )

    async def applied_migrations(self) -> list[str]:
        async with self._conn() as conn:
            exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if not exists:
                return []
            return [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")]

    async def migrate(self) -> list[str]:
        applied_now = []
        async with self._conn() as conn, conn.transaction():
            # A transaction-scoped lock (pooler-safe): concurrent migrators apply each file once.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
            await self._ensure_migrations_table(conn)
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in load_migrations("postgres"):
                if migration.version in done:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
                )
                applied_now.append(migration.version)
        for version in applied_now:
            log.info("migration applied", extra={"version": version})
        return applied_now

    async def claim_deliveries(
        self,
        channel: str,
        limit: int,
        now: datetime,
        lease_until: datetime,
        ids: Sequence[int] | None = None,
    ) -> list[ClaimedDelivery]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                UPDATE alert_deliveries d SET locked_until = $3, attempts = d.attempts + 1
                FROM (
                    SELECT id FROM alert_deliveries
                    WHERE state = 'pending' AND channel = $1 AND next_attempt_at <= $2
                      AND (locked_until IS NULL OR locked_until <= $2)
                      AND ($5::bigint[] IS NULL OR id = ANY($5::bigint[]))
                    ORDER BY next_attempt_at
                    LIMIT $4
                    FOR UPDATE SKIP LOCKED
                ) c
                WHERE d.id = c.id
                RETURNING d.id, d.channel, d.message::text, d.attempts, d.created_at
                """,
                channel,
                now,
                lease_until,
                limit,
                list(ids) if ids is not None else None,
            )
        return [ClaimedDelivery(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE alert_deliveries SET state = 'sent', finished_at = $2, locked_until = NULL"
                " WHERE id = ANY($1::bigint[])",
                list(ids),
                now,
            )

    async def mark_retry(
        self, id: int, next_attempt_at: datetime, error: str, message: bytes | None = None
    ) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE alert_deliveries SET next_attempt_at = $2, locked_until = NULL,"
                " last_error = $3, message = COALESCE($4::text::jsonb, message) WHERE id = $1",
                id,
                next_attempt_at,
                error,
                message.decode() if message is not None else None,
            )

    async def mark_dead(self, id: int, now: datetime, error: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE alert_deliveries SET state = 'dead', finished_at = $2, locked_until = NULL,"
                " last_error = $3 WHERE id = $1",
                id,
                now,
                error,
            )

    async def delivery_states(self, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT id, state, last_error FROM alert_deliveries WHERE id = ANY($1::bigint[])",
                list(ids),
            )
        return {r[0]: (r[1], r[2]) for r in rows}

    async def enqueue(self, rows: Sequence[NewDelivery], now: datetime) -> list[int]:
        async with self._conn() as conn:
            return await write_deliveries(conn, rows, now, returning=True)

    async def queue_stats(self) -> tuple[int, datetime | None, dict[str, int]]:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT count(*), min(created_at) FROM alert_deliveries WHERE state = 'pending'"
            )
            dead = await conn.fetch(
                "SELECT channel, count(*) FROM alert_deliveries WHERE state = 'dead'"
                " GROUP BY channel"
            )
        return row[0], row[1], {r[0]: r[1] for r in dead}

    async def purge(self, cutoff: datetime) -> dict[str, int]:
        statements = {
            **{
                t: f"DELETE FROM {t} WHERE received_at < $1 AND updated_at < $1"  # noqa: S608
                for t in ALERT_TABLES
            },
            "alert_notifications": "DELETE FROM alert_notifications WHERE received_at < $1",
            "alert_deliveries": "DELETE FROM alert_deliveries"
            " WHERE state <> 'pending' AND finished_at < $1",
            "alert_fatigue": "DELETE FROM alert_fatigue WHERE NOT flapping AND last_event_at < $1",
        }
        counts = {}
        async with self._conn() as conn, conn.transaction():
            for table, sql in statements.items():
                status = await conn.execute(sql, cutoff)
                counts[table] = int(status.rsplit(" ", 1)[-1])
        return counts

    async def load_routing(self) -> tuple[list[PreferenceRow], list[ConfigurationRow]]:
        async with self._conn() as conn:
            prefs = await conn.fetch(
                "SELECT organization_id, channels::text, recipients::text, min_severity,"
                " quiet_hours_start, quiet_hours_end, timezone FROM notification_preferences"
            )
            configs = await conn.fetch(
                "SELECT organization_id, alertname, threshold, enabled FROM alert_configurations"
            )
        return (
            [
                PreferenceRow(
                    r[0], decode_json(r[1]), decode_json(r[2]) or {}, r[3], r[4], r[5], r[6]
                )
                for r in prefs
            ],
            [ConfigurationRow(r[0], r[1], r[2], r[3]) for r in configs],
        )

    async def config_version(self) -> str:
        async with self._conn() as conn:
            return await conn.fetchval(
                "SELECT value FROM bridge_state WHERE key = 'config_version'"
            )

    async def query(self, sql: str) -> list[dict[str, Any]]:
        async with self._conn() as conn:
            return [dict(r) for r in await conn.fetch(sql)]

    async def execute(self, sql: str) -> None:
        async with self._conn() as conn:
            await conn.execute(sql)
