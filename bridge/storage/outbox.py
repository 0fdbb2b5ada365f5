"""The delivery outbox (``alert_deliveries``): what the webhook enqueues inside its transaction
and the delivery workers claim, send and finish.

Claims take due rows with ``FOR UPDATE SKIP LOCKED`` and a lease (``locked_until``), so replicas
never take the same row and a killed worker's rows are sent again after the lease. Every insert
raises ``NOTIFY passiton_outbox`` (delivered at commit): ``OutboxListener`` wakes the workers of
every replica at once instead of waiting for their next poll. Through a transaction pooler
(Supabase's port 6543) LISTEN cannot work; the workers then poll only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

import asyncpg

from bridge.storage.types import ClaimedDelivery, NewDelivery

log = logging.getLogger(__name__)

CHANNEL = "passiton_outbox"
NOTIFY_SQL = f"SELECT pg_notify('{CHANNEL}', '')"

_INSERT = """
    INSERT INTO alert_deliveries (channel, group_key, message, created_at, next_attempt_at)
    SELECT c, g, m::jsonb, $4, n
    FROM unnest($1::text[], $2::text[], $3::text[], $5::timestamptz[]) AS u(c, g, m, n)
"""


class Outbox(Protocol):
    """What the delivery workers need of the store (a test may fake it)."""

    async def claim_deliveries(
        self,
        channel: str,
        limit: int,
        now: datetime,
        lease_until: datetime,
        ids: Sequence[int] | None = None,
    ) -> list[ClaimedDelivery]: ...

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None: ...

    async def mark_retry(
        self,
        id: int,
        next_attempt_at: datetime,
        error: str,
        message: bytes | None = None,
        *,
        attempted_at: datetime | None = None,
    ) -> None: ...

    async def mark_dead(self, id: int, now: datetime, error: str) -> None: ...


async def insert_deliveries(
    conn: asyncpg.Connection, rows: Sequence[NewDelivery], now: datetime, *, returning: bool
) -> list[int]:
    """One statement for every row (``unnest``), and the wake-up of every replica's workers."""
    args = (
        [r.channel for r in rows],
        [r.group_key for r in rows],
        [r.message.decode() for r in rows],
        now,
        [r.next_attempt_at for r in rows],
    )
    sql = f"WITH d AS ({_INSERT} RETURNING id) SELECT id, ({NOTIFY_SQL}) IS NULL FROM d"  # noqa: S608
    ids = [r[0] for r in await conn.fetch(sql, *args)]
    return ids if returning else []


class OutboxQueries:
    """The outbox operations of ``Storage`` (each on a pooled connection of its own)."""

    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def claim_deliveries(
        self,
        channel: str,
        limit: int,
        now: datetime,
        lease_until: datetime,
        ids: Sequence[int] | None = None,
    ) -> list[ClaimedDelivery]:
        """Take up to limit due, unclaimed deliveries of a channel until lease_until."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                WITH claimed AS (
                    UPDATE alert_deliveries d SET locked_until = $3, attempts = d.attempts + 1
                    FROM (
                        SELECT id FROM alert_deliveries
                        WHERE state = 'pending' AND channel = $1 AND next_attempt_at <= $2
                          AND (locked_until IS NULL OR locked_until <= $2)
                          AND ($5::bigint[] IS NULL OR id = ANY($5::bigint[]))
                        ORDER BY next_attempt_at, id
                        LIMIT $4
                        FOR UPDATE SKIP LOCKED
                    ) c
                    WHERE d.id = c.id
                    RETURNING d.id, d.channel, d.message::text AS message, d.attempts,
                        d.created_at, d.first_attempt_at, d.next_attempt_at
                )
                -- UPDATE ... RETURNING keeps no order: the oldest due first, the first queued
                -- first among equals (two pages held by one rate limit go out in order)
                SELECT id, channel, message, attempts, created_at, first_attempt_at
                FROM claimed ORDER BY next_attempt_at, id
                """,
                channel,
                now,
                lease_until,
                limit,
                list(ids) if ids is not None else None,
            )
        return [ClaimedDelivery(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE alert_deliveries SET state = 'sent', finished_at = $2, locked_until = NULL"
                " WHERE id = ANY($1::bigint[])",
                list(ids),
                now,
            )

    async def mark_retry(
        self,
        id: int,
        next_attempt_at: datetime,
        error: str,
        message: bytes | None = None,
        *,
        attempted_at: datetime | None = None,
    ) -> None:
        """Schedule another attempt; ``message`` replaces the stored one (fewer recipients).

        ``attempted_at``: when the failed send started; kept as ``first_attempt_at`` if that is
        not set yet. None means nothing was sent (held by a rate limit): the claim's attempt is
        given back, so a held delivery keeps its retries."""
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE alert_deliveries SET next_attempt_at = $2, locked_until = NULL,"
                " last_error = $3, message = COALESCE($4::text::jsonb, message),"
                " first_attempt_at = COALESCE(first_attempt_at, $5),"
                " attempts = CASE WHEN $5::timestamptz IS NULL THEN greatest(attempts - 1, 0)"
                " ELSE attempts END WHERE id = $1",
                id,
                next_attempt_at,
                error,
                message.decode() if message is not None else None,
                attempted_at,
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
        """(state, last_error) of the given deliveries."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT id, state, last_error FROM alert_deliveries WHERE id = ANY($1::bigint[])",
                list(ids),
            )
        return {r[0]: (r[1], r[2]) for r in rows}

    async def enqueue(self, rows: Sequence[NewDelivery], now: datetime) -> list[int]:
        """Insert deliveries outside a notification (test alerts); returns their ids."""
        async with self._conn() as conn:
            return await insert_deliveries(conn, rows, now, returning=True)

    async def queue_stats(self) -> tuple[int, datetime | None, dict[str, int]]:
        """Pending deliveries, the oldest pending creation time, dead letters per channel."""
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT count(*), min(COALESCE(first_attempt_at, next_attempt_at))"
                " FROM alert_deliveries WHERE state = 'pending'"
            )
            dead = await conn.fetch(
                "SELECT channel, count(*) FROM alert_deliveries WHERE state = 'dead'"
                " GROUP BY channel"
            )
        return row[0], row[1], {r[0]: r[1] for r in dead}


class OutboxListener:
    """``LISTEN passiton_outbox`` on a connection of its own, calling ``wake`` on every insert
    by any replica; reconnects with a backoff while the database is away."""

    def __init__(self, dsn: str, wake: Callable[[], None], *, retry_seconds: float = 2.0) -> None:
        self.dsn = dsn
        self.wake = wake
        self.retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notified(self, *_: object) -> None:
        self.wake()

    async def _run(self) -> None:
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                self.listening.set()
                self.wake()  # anything inserted while not listening
                while not lost.is_set():  # a silent network loss shows at the next ping
                    try:
                        await asyncio.wait_for(lost.wait(), 30)
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("outbox listener disconnected", extra={"error": type(exc).__name__})
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(self.retry_seconds)
