"""The console's incident queries (a mixin of ``ConsoleQueries``; what each one means is in
``console.py``'s ``ConsoleStore``): the incidents of the Now page, one incident with its alerts
and timeline, and acknowledging an incident with its alerts in one transaction.

A scope (the user's organizations, None for every one) limits incidents to those whose
``organizations`` overlap it, and alerts to those of its organizations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import decode_json, encode_json
from bridge.storage.console import (
    AlertRow,
    AuditEntry,
    ConsoleIncident,
    IncidentAck,
    IncidentEvent,
    Scope,
)
from bridge.storage.console_rows import ALERT_COLUMNS, alert_row, audit_row, insert_audit
from bridge.storage.incidents import SURVIVOR_SQL
from bridge.storage.types import ALERT_TABLES

_INCIDENT_COLUMNS = (
    "id, title, severity, status, probable_cause, organizations, alert_count, opened_at,"
    " last_alert_at, acknowledged_at, resolved_at, ack_expires_at, snoozed_until, snoozed_by,"
    " assignee"
)
# $1: incident ids, $2: the scope's organizations (NULL: every one)
_ALERTS_SQL = " UNION ALL ".join(
    f"SELECT '{t}' AS tbl, {ALERT_COLUMNS} FROM {t}"  # noqa: S608 - fixed names
    " WHERE incident_id = ANY($1::bigint[])"
    " AND ($2::text[] IS NULL OR organization_id = ANY($2::text[]))"
    for t in ALERT_TABLES
)
_FIRING_SQL = " UNION ALL ".join(
    f"SELECT '{t}', fingerprint, starts_at, severity FROM {t}"  # noqa: S608 - fixed names
    " WHERE incident_id = $1 AND status = 'firing'"
    " AND ($2::text[] IS NULL OR organization_id = ANY($2::text[]))"
    for t in ALERT_TABLES
)


def _scope(scope: Scope) -> list[str] | None:
    return None if scope is None else list(scope)


def _incident(r: Any) -> ConsoleIncident:
    return ConsoleIncident(*r[:5], list(r[5]), *r[6:15])


class IncidentReads:
    """What the console reads and writes of incidents."""

    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def incidents(
        self, resolved_since: datetime, scope: Scope, limit: int
    ) -> list[ConsoleIncident]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_INCIDENT_COLUMNS} FROM incidents"  # noqa: S608 - fixed columns
                " WHERE (status <> 'resolved' OR resolved_at >= $1) AND merged_into IS NULL"
                " AND ($2::text[] IS NULL OR organizations && $2::text[])"
                " ORDER BY last_alert_at DESC, id DESC LIMIT $3",
                resolved_since,
                _scope(scope),
                limit,
            )
        return [_incident(r) for r in rows]

    async def incident(self, incident_id: int, scope: Scope) -> ConsoleIncident | None:
        async with self._conn() as conn:
            r = await conn.fetchrow(
                f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = $1"  # noqa: S608
                " AND ($2::text[] IS NULL OR organizations && $2::text[])",
                incident_id,
                _scope(scope),
            )
        return _incident(r) if r else None

    async def surviving_incident(self, incident_id: int) -> int | None:
        async with self._conn() as conn:
            return await conn.fetchval(SURVIVOR_SQL, incident_id)

    async def incident_alerts(self, incident_ids: Sequence[int], scope: Scope) -> list[AlertRow]:
        if not incident_ids:
            return []
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM ({_ALERTS_SQL}) a ORDER BY starts_at, tbl, id",  # noqa: S608
                list(incident_ids),
                _scope(scope),
            )
        return [alert_row(r[0], r[1:]) for r in rows]

    async def incident_events(self, incident_id: int) -> list[IncidentEvent]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT at, kind, detail::text FROM incident_events WHERE incident_id = $1"
                " ORDER BY at, id",
                incident_id,
            )
        return [IncidentEvent(r[0], r[1], decode_json(r[2]) or {}) for r in rows]

    async def audit_of(self, instances: Sequence[tuple[str, datetime]]) -> list[AuditEntry]:
        if not instances:
            return []
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT a.at, a.username, a.action, a.fingerprint, a.starts_at, a.detail::text"
                " FROM console_audit a JOIN unnest($1::text[], $2::timestamptz[]) AS i(f, s)"
                " ON a.fingerprint = i.f AND a.starts_at = i.s ORDER BY a.id",
                [i[0] for i in instances],
                [i[1] for i in instances],
            )
        return [audit_row(r) for r in rows]

    async def acknowledge_incident(
        self,
        incident_id: int,
        scope: Scope,
        note: str,
        audit: AuditEntry,
        *,
        set_status: bool = True,
    ) -> IncidentAck | None:
        async with self._conn() as conn, conn.transaction():
            # the row lock orders this against the ingest writing the incident (a resolve
            # committed first is seen here; one coming after keeps the acknowledgement)
            status = await conn.fetchval(
                "SELECT status FROM incidents WHERE id = $1"
                " AND ($2::text[] IS NULL OR organizations && $2::text[]) FOR UPDATE",
                incident_id,
                _scope(scope),
            )
            if status is None or status == "resolved":
                return None if status is None else IncidentAck(status, False, 0)
            firing = await conn.fetch(_FIRING_SQL, incident_id, _scope(scope))
            acked = await conn.fetch(
                """
                INSERT INTO alert_acknowledgements AS a (fingerprint, starts_at, alert_table,
                    severity, username, note, created_at)
                SELECT f, s, t, sev, $5, $6, $7
                FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[])
                    AS u(f, s, t, sev)
                ON CONFLICT (fingerprint, starts_at) DO UPDATE SET username = excluded.username,
                    note = excluded.note, created_at = excluded.created_at, expires_at = NULL
                    WHERE a.expires_at IS NOT NULL AND a.expires_at <= excluded.created_at
                RETURNING fingerprint, starts_at
                """,
                [r[1] for r in firing],
                [r[2] for r in firing],
                [r[0] for r in firing],
                [r[3] for r in firing],
                audit.username,
                note,
                audit.at,
            )
            for fingerprint, starts_at in acked:
                entry = replace(
                    audit,
                    action="acknowledged",
                    fingerprint=fingerprint,
                    starts_at=starts_at,
                    detail={"note": note, "incident": incident_id},
                )
                await insert_audit(conn, entry)
            if not set_status:
                if acked:
                    await insert_audit(conn, audit)
                return IncidentAck(status, False, len(acked))
            moved = await conn.execute(
                "UPDATE incidents SET status = 'acknowledged', acknowledged_at = $2,"
                " updated_at = $2 WHERE id = $1 AND status = 'firing'",
                incident_id,
                audit.at,
            )
            changed = moved.endswith(" 1")
            if changed or acked:
                detail = {"by": audit.username, "via": "console", "alerts": len(acked)}
                if note:
                    detail["note"] = note
                await conn.execute(
                    "INSERT INTO incident_events (incident_id, at, kind, detail)"
                    " VALUES ($1, $2, 'acknowledged', $3::jsonb)",
                    incident_id,
                    audit.at,
                    encode_json(detail),
                )
                await insert_audit(conn, audit)
        return IncidentAck(status, changed, len(acked))
