"""On-call overrides (``oncall_overrides``): added, listed by the span they touch, removed.
What they mean is ``bridge/oncall/schedule.py``; a swap is two covers written together."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import asyncpg

from bridge.oncall.schedule import Override

_INSERT = (
    "INSERT INTO oncall_overrides"
    " (schedule_id, person_id, replaces, starts_at, ends_at, reason, created_by, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()))"
    " RETURNING id, schedule_id, person_id, replaces, starts_at, ends_at, reason, created_by,"
    " created_at"
)
_OVERLAPPING = (
    "SELECT id, schedule_id, person_id, replaces, starts_at, ends_at, reason, created_by,"
    " created_at FROM oncall_overrides WHERE starts_at < $2 AND ends_at > $1"
    " AND ($3::text IS NULL OR schedule_id = $3) ORDER BY id"
)


def _override(row: asyncpg.Record) -> Override:
    return Override(
        id=row["id"],
        schedule_id=row["schedule_id"],
        person_id=row["person_id"],
        replaces=row["replaces"],
        start=row["starts_at"],
        end=row["ends_at"],
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


async def _insert(
    conn: asyncpg.Connection,
    schedule_id: str,
    person_id: str,
    start: datetime,
    end: datetime,
    replaces: str | None,
    reason: str,
    created_by: str,
    now: datetime | None,
) -> Override:
    row = await conn.fetchrow(
        _INSERT,
        schedule_id,
        person_id,
        replaces,
        start,
        end,
        reason,
        created_by,
        now,
    )
    return _override(row)


class OncallQueries:
    """The overrides of ``Storage`` (a mixin: its ``_conn``)."""

    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def add_override(
        self,
        schedule_id: str,
        person_id: str,
        start: datetime,
        end: datetime,
        *,
        replaces: str | None = None,
        reason: str = "",
        created_by: str = "",
        now: datetime | None = None,
    ) -> Override:
        """Store one override (the ids are not checked here: the caller has the on-call file);
        ValueError when end is not after start or a person replaces themself."""
        _check(person_id, replaces, start, end)
        async with self._conn() as conn:
            return await _insert(
                conn, schedule_id, person_id, start, end, replaces, reason, created_by, now
            )

    async def add_swap(
        self,
        schedule_id: str,
        person_id: str,
        other_id: str,
        span: tuple[datetime, datetime],
        other_span: tuple[datetime, datetime],
        *,
        reason: str = "",
        created_by: str = "",
        now: datetime | None = None,
    ) -> tuple[Override, Override]:
        """A swap: person_id covers other_id's time in ``span``, other_id covers person_id's
        in ``other_span``; both or neither are stored."""
        _check(person_id, other_id, *span)
        _check(other_id, person_id, *other_span)
        async with self._conn() as conn, conn.transaction():
            first = await _insert(
                conn, schedule_id, person_id, *span, other_id, reason, created_by, now
            )
            second = await _insert(
                conn, schedule_id, other_id, *other_span, person_id, reason, created_by, now
            )
        return first, second

    async def overrides(
        self, start: datetime, end: datetime, schedule_id: str | None = None
    ) -> list[Override]:
        """The overrides overlapping [start, end) (of one schedule, or all), by id."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                _OVERLAPPING,
                start,
                end,
                schedule_id,
            )
        return [_override(r) for r in rows]

    async def remove_override(self, override_id: int) -> bool:
        """Delete one override; False when there was none with that id."""
        async with self._conn() as conn:
            deleted = await conn.fetchval(
                "DELETE FROM oncall_overrides WHERE id = $1 RETURNING id", override_id
            )
        return deleted is not None


def _check(person_id: str, replaces: str | None, start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValueError("an override's end must be after its start")
    if replaces == person_id:
        raise ValueError(f"{person_id} cannot cover their own time")
