"""The console's on-call queries (a mixin of ``ConsoleQueries``; what each one means is in
``console.py``'s ``ConsoleStore``): an incident's escalation state, and on-call overrides
added (a swap's two covers together) or removed with their audit entry in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime

import asyncpg

from bridge.oncall.schedule import Override
from bridge.storage.console import AuditEntry, EscalationRow, NewOverride
from bridge.storage.console_rows import insert_audit
from bridge.storage.oncall import _check, _insert, _override

_OVERRIDE_COLUMNS = (
    "id, schedule_id, person_id, replaces, starts_at, ends_at, reason, created_by, created_at"
)


class OncallReads:
    """What the console reads and writes of escalations and on-call overrides."""

    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def escalation(self, incident_id: int) -> EscalationRow | None:
        async with self._conn() as conn:
            r = await conn.fetchrow(
                "SELECT policy_id, state, step, round, next_at, started_at, updated_at"
                " FROM escalations WHERE incident_id = $1",
                incident_id,
            )
        return EscalationRow(*r) if r else None

    async def oncall_overrides(self, start: datetime, end: datetime) -> list[Override]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_OVERRIDE_COLUMNS} FROM oncall_overrides"  # noqa: S608 - fixed columns
                " WHERE starts_at < $2 AND ends_at > $1 ORDER BY id",
                start,
                end,
            )
        return [_override(r) for r in rows]

    async def add_overrides(
        self, rows: Sequence[NewOverride], created_by: str, audit: AuditEntry
    ) -> list[Override]:
        for row in rows:
            _check(row.person_id, row.replaces, row.start, row.end)
        made = []
        async with self._conn() as conn, conn.transaction():
            for row in rows:
                made.append(
                    await _insert(
                        conn,
                        row.schedule_id,
                        row.person_id,
                        row.start,
                        row.end,
                        row.replaces,
                        row.reason,
                        created_by,
                        audit.at,
                    )
                )
            detail = {**audit.detail, "overrides": [o.id for o in made]}
            await insert_audit(conn, replace(audit, detail=detail))
        return made

    async def remove_override(self, override_id: int, audit: AuditEntry) -> Override | None:
        async with self._conn() as conn, conn.transaction():
            r = await conn.fetchrow(
                f"DELETE FROM oncall_overrides WHERE id = $1"  # noqa: S608 - fixed columns
                f" RETURNING {_OVERRIDE_COLUMNS}",
                override_id,
            )
            if r is None:
                return None
            removed = _override(r)
            detail = {
                **audit.detail,
                "override": removed.id,
                "schedule": removed.schedule_id,
                "person": removed.person_id,
                "replaces": removed.replaces or "",
                "start": removed.start.isoformat(),
                "end": removed.end.isoformat(),
            }
            await insert_audit(conn, replace(audit, detail=detail))
        return removed
