"""``Storage``: the bridge's PostgreSQL (Supabase included) through an asyncpg pool, and
``Transaction``: everything one notification writes, committed together or not at all.

Pooler-safe: with ``?pgbouncer=true`` in the URL, or Supabase's transaction pooler port 6543,
the prepared-statement cache is off and nothing relies on session state (no SET, no session
advisory locks, no temporary tables; LISTEN only on a direct connection).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from bridge.storage import history, migrations
from bridge.storage.alerts import AlertWrites
from bridge.storage.connection import is_unavailable, pooler_dsn, translated
from bridge.storage.console_queries import ConsoleQueries
from bridge.storage.escalations import EscalationWrites
from bridge.storage.history import HistoryWrites
from bridge.storage.incident_work import IncidentWorkWrites
from bridge.storage.incidents import IncidentRow, IncidentWrites
from bridge.storage.oncall import OncallQueries
from bridge.storage.outbox import OutboxListener, OutboxQueries
from bridge.storage.reconcile import ReconcileWrites
from bridge.storage.routing import RoutingQueries
from bridge.storage.state import StateOps
from bridge.storage.types import StorageUnavailable

log = logging.getLogger(__name__)


class Transaction(
    AlertWrites, StateOps, HistoryWrites, IncidentWrites, EscalationWrites, IncidentWorkWrites
):
    """One database transaction on one connection (see ``Storage.transaction``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn


class Storage(OutboxQueries, RoutingQueries, ReconcileWrites, OncallQueries):
    """The database holding the alert tables, the delivery outbox and the bridge's state."""

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

    async def __aenter__(self) -> Storage:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StorageUnavailable("storage is not open")
        async with translated(), self._pool.acquire(timeout=self.connect_timeout) as conn:
            yield conn

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers."""
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._pool is None:
            raise StorageUnavailable("storage is not open")
        async with translated():
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
                yield Transaction(conn)
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

    async def applied_migrations(self) -> list[str]:
        async with self._conn() as conn:
            return await migrations.applied(conn)

    async def pending_migrations(self) -> list[str]:
        done = set(await self.applied_migrations())
        return [m.version for m in migrations.load_migrations() if m.version not in done]

    async def migrate(self) -> list[str]:
        """Apply the migrations not applied yet, in order; returns their versions."""
        async with self._conn() as conn:
            applied_now = await migrations.apply(conn)
        for version in applied_now:
            log.info("migration applied", extra={"version": version})
        return applied_now

    async def purge(self, cutoff: datetime) -> dict[str, int]:
        """Delete alert history and finished bookkeeping older than cutoff; counts per table."""
        async with self._conn() as conn:
            return await history.purge(conn, cutoff)

    def outbox_listener(self, wake: Callable[[], None]) -> OutboxListener | None:
        """A listener that calls ``wake`` whenever any replica enqueues a delivery; None
        behind a transaction pooler, where LISTEN cannot work (the workers poll)."""
        return None if self.pooled else OutboxListener(self.dsn, wake)

    async def incidents(self, *, open_only: bool = False) -> list[IncidentRow]:
        """The incidents (or the open ones), oldest first."""
        async with self.transaction() as tx:
            return await tx.incident_rows(open_only=open_only)

    def console(self) -> ConsoleQueries:
        """The alert console's queries on this database."""
        return ConsoleQueries(self._conn)

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a parameterless SELECT (operator tools and tests)."""
        async with self._conn() as conn:
            return [dict(r) for r in await conn.fetch(sql)]

    async def execute(self, sql: str) -> None:
        """Run parameterless statements (operator tools and tests)."""
        async with self._conn() as conn:
            await conn.execute(sql)
