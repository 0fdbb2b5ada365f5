"""The incidents' Slack messages (``slack_messages``): what the Slack channel's Web API mode keeps
of an incident's parent message, claimed under a row lock.

``SlackMessages(storage).parent(incident_id, now)`` opens a transaction, creates the incident's
row if it has none and locks it (``FOR UPDATE NOWAIT`` under a short ``lock_timeout``, inside a
savepoint): a second worker or replica asking meanwhile gets ``None`` at once instead of
waiting. The lock is held while the channel posts or updates the parent and is released at the
end of the block, committing what the claim recorded; an exception (a failed post, a cancelled
delivery, a crashed process) rolls it back, so the next attempt finds the parent as it was.
Transaction-scoped only: safe behind a transaction pooler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import decode_json, encode_json
from bridge.storage.store import Storage

# How long a worker waits for another's uncommitted insert of the same row before giving up.
CLAIM_LOCK_TIMEOUT = "200ms"

_SELECT = """
SELECT s.channel, s.ts, s.body::text, s.body_severity, s.waiting_since, s.unanswered_since
FROM slack_messages s WHERE s.incident_id = $1 FOR UPDATE OF s NOWAIT
"""
_INSERT = """
INSERT INTO slack_messages (incident_id, created_at, updated_at)
SELECT $1, $2, $2 WHERE EXISTS (SELECT 1 FROM incidents WHERE id = $1)
ON CONFLICT (incident_id) DO NOTHING
RETURNING channel, ts, body::text, body_severity, waiting_since, unanswered_since
"""


@dataclass
class SlackParentClaim:
    """One incident's Slack parent, locked on ``conn`` (satisfies ``ParentClaim``)."""

    conn: asyncpg.Connection
    incident_id: int
    status: str | None
    severity: str
    title: str
    channel: str | None = None
    ts: str | None = None
    body: list[dict[str, Any]] | None = None
    body_severity: str | None = None
    waiting_since: datetime | None = None
    unanswered_since: datetime | None = None

    async def created(
        self, channel: str, ts: str, body: list[dict[str, Any]], body_severity: str, now: datetime
    ) -> None:
        await self.conn.execute(
            "UPDATE slack_messages SET channel = $2, ts = $3, body = $4::jsonb,"
            " body_severity = $5, unanswered_since = NULL, updated_at = $6"
            " WHERE incident_id = $1",
            self.incident_id,
            channel,
            ts,
            encode_json(body),
            body_severity,
            now,
        )
        await self.conn.execute(
            "UPDATE incidents SET slack_channel = $2, slack_thread_ts = $3 WHERE id = $1",
            self.incident_id,
            channel,
            ts,
        )
        self.channel, self.ts, self.body, self.body_severity = channel, ts, body, body_severity
        self.unanswered_since = None

    async def updated(self, body: list[dict[str, Any]], body_severity: str, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE slack_messages SET body = $2::jsonb, body_severity = $3, updated_at = $4"
            " WHERE incident_id = $1",
            self.incident_id,
            encode_json(body),
            body_severity,
            now,
        )
        self.body, self.body_severity = body, body_severity

    async def waiting(self, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE slack_messages SET waiting_since = COALESCE(waiting_since, $2),"
            " updated_at = $2 WHERE incident_id = $1",
            self.incident_id,
            now,
        )
        self.waiting_since = self.waiting_since or now

    async def unanswered(self, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE slack_messages SET unanswered_since = COALESCE(unanswered_since, $2),"
            " updated_at = $2 WHERE incident_id = $1",
            self.incident_id,
            now,
        )
        self.unanswered_since = self.unanswered_since or now


class SlackMessages:
    """The ``SlackThreads`` store of the Slack channel, on the bridge's database."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @asynccontextmanager
    async def parent(
        self, incident_id: int, now: datetime
    ) -> AsyncIterator[SlackParentClaim | None]:
        async with self.storage.transaction() as tx:
            conn = tx.conn
            incident = await conn.fetchrow(
                "SELECT status, severity, title FROM incidents WHERE id = $1", incident_id
            )
            if incident is None:
                yield SlackParentClaim(conn, incident_id, None, "low", "")
                return
            row = await _lock(conn, incident_id, now)
            if row is None:
                yield None
                return
            yield SlackParentClaim(
                conn,
                incident_id,
                status=incident["status"],
                severity=incident["severity"],
                title=incident["title"],
                channel=row[0],
                ts=row[1],
                body=decode_json(row[2]),
                body_severity=row[3],
                waiting_since=row[4],
                unanswered_since=row[5],
            )


async def _lock(conn: asyncpg.Connection, incident_id: int, now: datetime) -> asyncpg.Record | None:
    """The incident's row, created if needed and locked; None when another transaction has it."""
    try:
        async with conn.transaction():  # a savepoint: a lock refused leaves the transaction usable
            await conn.execute(f"SET LOCAL lock_timeout = '{CLAIM_LOCK_TIMEOUT}'")
            row = await conn.fetchrow(_SELECT, incident_id)
            if row is None:
                # Another worker's uncommitted insert of this row makes this wait (lock_timeout).
                row = await conn.fetchrow(_INSERT, incident_id, now)
                if row is None:  # inserted and committed by another worker just now
                    row = await conn.fetchrow(_SELECT, incident_id)
            await conn.execute("SET LOCAL lock_timeout = 0")
    except asyncpg.LockNotAvailableError:
        return None
    return row
