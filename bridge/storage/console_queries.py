"""The console's queries (see ``console.py`` for what each one means)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import decode_json, encode_json
from bridge.storage.console import (
    Acknowledgement,
    AlertRow,
    Attempt,
    AuditEntry,
    ConsoleStore,
    ConsoleUser,
    Cursor,
    DeliveryRow,
    HistoryFilter,
    Scope,
    Skip,
)
from bridge.storage.console_api import ApiReads
from bridge.storage.console_incidents import IncidentReads
from bridge.storage.console_now import NowReads
from bridge.storage.console_oidc import USER_COLUMNS, OidcReads, user_row
from bridge.storage.console_oncall import OncallReads
from bridge.storage.console_review import ReviewReads
from bridge.storage.console_rows import (
    ALERT_COLUMNS,
    alert_row,
    audit_row,
    delivery_row,
    insert_audit,
    like,
)
from bridge.storage.reconcile import ReconcileReads
from bridge.storage.types import ALERT_TABLES, ConfigurationRow, PreferenceRow


class ConsoleQueries(
    ApiReads,
    IncidentReads,
    NowReads,
    OidcReads,
    OncallReads,
    ReconcileReads,
    ReviewReads,
    ConsoleStore,
):
    def __init__(
        self, connection: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
    ) -> None:
        self._conn = connection

    async def upsert_user(
        self,
        username: str,
        password_hash: str,
        role: str,
        now: datetime,
        organizations: Scope = None,
    ) -> None:
        async with self._conn() as conn:
            await conn.execute(
                """
                INSERT INTO console_users (username, password_hash, role, created_at, updated_at,
                    organizations)
                VALUES ($1, $2, $3, $4, $4, $5)
                ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,
                    role = excluded.role, updated_at = excluded.updated_at,
                    organizations = excluded.organizations,
                    oidc_issuer = NULL, oidc_subject = NULL,
                    session_epoch = console_users.session_epoch + 1
                """,
                username,
                password_hash,
                role,
                now,
                None if organizations is None else list(organizations),
            )

    async def get_user(self, username: str) -> ConsoleUser | None:
        async with self._conn() as conn:
            r = await conn.fetchrow(
                f"SELECT {USER_COLUMNS} FROM console_users WHERE username = $1",  # noqa: S608
                username,
            )
        return user_row(r) if r else None

    async def list_users(self) -> list[ConsoleUser]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT username, '', role, session_epoch, organizations,"
                " oidc_subject IS NOT NULL FROM console_users ORDER BY username"
            )
        return [user_row(r) for r in rows]

    async def end_sessions(self, username: str, audit: AuditEntry) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                "UPDATE console_users SET session_epoch = session_epoch + 1 WHERE username = $1",
                username,
            )
            await insert_audit(conn, audit)

    async def firing(self, limit: int) -> list[AlertRow]:
        rows: list[AlertRow] = []
        async with self._conn() as conn:
            for table in ALERT_TABLES:
                found = await conn.fetch(
                    f"SELECT {ALERT_COLUMNS} FROM {table} WHERE status = 'firing'"  # noqa: S608
                    " ORDER BY starts_at DESC LIMIT $1",
                    limit,
                )
                rows.extend(alert_row(table, r) for r in found)
        rows.sort(key=lambda a: a.starts_at, reverse=True)
        return rows[:limit]

    async def alert(self, table: str, id: int) -> AlertRow | None:
        if table not in ALERT_TABLES:
            return None
        async with self._conn() as conn:
            r = await conn.fetchrow(
                f"SELECT {ALERT_COLUMNS} FROM {table} WHERE id = $1",  # noqa: S608
                id,
            )
        return alert_row(table, r) if r else None

    async def deliveries(self, fingerprints: Sequence[str]) -> list[DeliveryRow]:
        if not fingerprints:
            return []
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                SELECT d.id, d.channel, d.state, d.attempts, d.created_at, d.next_attempt_at,
                       d.finished_at, d.last_error, d.message::text
                FROM alert_deliveries d
                WHERE d.id IN (SELECT delivery_id FROM delivery_alerts
                               WHERE fingerprint = ANY($1::text[]))
                ORDER BY d.id
                """,
                list(set(fingerprints)),
            )
        return [delivery_row(r) for r in rows]

    async def attempts(self, delivery_ids: Sequence[int]) -> list[Attempt]:
        if not delivery_ids:
            return []
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT delivery_id, attempt, result, error, at FROM delivery_attempts"
                " WHERE delivery_id = ANY($1::bigint[]) ORDER BY id",
                list(delivery_ids),
            )
        return [Attempt(*r) for r in rows]

    async def acknowledgements(
        self, instances: Sequence[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], Acknowledgement]:
        if not instances:
            return {}
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                SELECT a.fingerprint, a.starts_at, a.alert_table, a.severity, a.username, a.note,
                       a.created_at, a.expires_at
                FROM alert_acknowledgements a
                JOIN unnest($1::text[], $2::timestamptz[]) AS i(f, s)
                  ON a.fingerprint = i.f AND a.starts_at = i.s
                """,
                [i[0] for i in instances],
                [i[1] for i in instances],
            )
        return {(r[0], r[1]): Acknowledgement(*r) for r in rows}

    async def acknowledge(self, ack: Acknowledgement, audit: AuditEntry) -> bool:
        async with self._conn() as conn, conn.transaction():
            status = await conn.execute(
                """
                INSERT INTO alert_acknowledgements AS a (fingerprint, starts_at, alert_table,
                    severity, username, note, created_at, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (fingerprint, starts_at) DO UPDATE SET username = excluded.username,
                    note = excluded.note, created_at = excluded.created_at,
                    expires_at = excluded.expires_at
                    WHERE a.expires_at IS NOT NULL AND a.expires_at <= excluded.created_at
                """,
                ack.fingerprint,
                ack.starts_at,
                ack.alert_table,
                ack.severity,
                ack.username,
                ack.note,
                ack.created_at,
                ack.expires_at,
            )
            if status.endswith(" 0"):
                return False
            await insert_audit(conn, audit)
        return True

    async def unacknowledge(self, fingerprint: str, starts_at: datetime, audit: AuditEntry) -> bool:
        async with self._conn() as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM alert_acknowledgements WHERE fingerprint = $1 AND starts_at = $2",
                fingerprint,
                starts_at,
            )
            if status.endswith(" 0"):
                return False
            await insert_audit(conn, audit)
        return True

    async def skips(self, fingerprint: str, starts_at: datetime) -> list[Skip]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT status, channel, reason, until, at FROM alert_skips"
                " WHERE fingerprint = $1 AND starts_at = $2 ORDER BY at, channel",
                fingerprint,
                starts_at,
            )
        return [Skip(*r) for r in rows]

    async def audit(self, entry: AuditEntry) -> None:
        async with self._conn() as conn:
            await insert_audit(conn, entry)

    async def audit_for(self, fingerprint: str, starts_at: datetime) -> list[AuditEntry]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT at, username, action, fingerprint, starts_at, detail::text"
                " FROM console_audit WHERE fingerprint = $1 AND starts_at = $2 ORDER BY id",
                fingerprint,
                starts_at,
            )
        return [audit_row(r) for r in rows]

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT at, username, action, fingerprint, starts_at, detail::text"
                " FROM console_audit ORDER BY id DESC LIMIT $1",
                limit,
            )
        return [audit_row(r) for r in rows]

    async def retry_dead(self, delivery_id: int, now: datetime, audit: AuditEntry) -> bool:
        async with self._conn() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE alert_deliveries SET state = 'pending', next_attempt_at = $2,"
                " created_at = $2, finished_at = NULL, locked_until = NULL, attempts = 0"
                " WHERE id = $1 AND state = 'dead'",
                delivery_id,
                now,
            )
            if status.endswith(" 0"):
                return False
            await insert_audit(conn, audit)
        return True

    async def history(
        self, where: HistoryFilter, cursor: Cursor | None, limit: int
    ) -> list[AlertRow]:
        parts: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        common: list[str] = []
        if where.severity:
            common.append(f"severity = {arg(where.severity)}")
        if where.organization_id:
            common.append(f"organization_id = {arg(where.organization_id)}")
        if where.within is not None:
            common.append(f"organization_id = ANY({arg(list(where.within))}::text[])")
        if where.alertname:
            common.append(f"alertname = {arg(where.alertname)}")
        if where.status:
            common.append(f"status = {arg(where.status)}")
        if where.since:
            common.append(f"starts_at >= {arg(where.since)}")
        if where.until:
            common.append(f"starts_at < {arg(where.until)}")
        if where.text:
            pattern = arg(like(where.text))
            # the expression of the trigram index (0002_console.sql)
            common.append(
                "(summary || ' ' || alertname || ' ' || coalesce(organization_id, ''))"
                f" ILIKE {pattern}"
            )
        limit_arg = arg(limit)
        for table in where.tables():
            conditions = list(common)
            if cursor is not None:
                op, same = cursor.condition(table)
                ts = arg(cursor.starts_at)
                if same:
                    conditions.append(f"(starts_at, id) < ({ts}, {arg(cursor.id)})")
                else:
                    conditions.append(f"starts_at {'<=' if op == 'le' else '<'} {ts}")
            clause = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            parts.append(
                f"(SELECT '{table}' AS tbl, {ALERT_COLUMNS} FROM {table} {clause}"  # noqa: S608
                f" ORDER BY starts_at DESC, id DESC LIMIT {limit_arg})"
            )
        union = " UNION ALL ".join(parts)
        sql = f"SELECT * FROM ({union}) u ORDER BY 13 DESC, 1 DESC, 2 DESC LIMIT {limit_arg}"  # noqa: S608
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return [alert_row(r[0], r[1:]) for r in rows]

    async def organizations(self, since: datetime) -> list[str]:
        recent = " UNION ".join(
            f"SELECT DISTINCT organization_id FROM {t}"  # noqa: S608
            " WHERE organization_id IS NOT NULL AND starts_at > $1"
            for t in ALERT_TABLES
        )
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT organization_id FROM notification_preferences UNION"  # noqa: S608
                f" SELECT organization_id FROM alert_configurations UNION {recent}"
                " ORDER BY 1",
                since,
            )
        return [r[0] for r in rows if r[0] != "*"]

    async def preference(self, organization_id: str) -> PreferenceRow | None:
        async with self._conn() as conn:
            r = await conn.fetchrow(
                "SELECT organization_id, channels::text, recipients::text, min_severity,"
                " quiet_hours_start, quiet_hours_end, timezone FROM notification_preferences"
                " WHERE organization_id = $1",
                organization_id,
            )
        if r is None:
            return None
        return PreferenceRow(
            r[0], decode_json(r[1]), decode_json(r[2]) or {}, r[3], r[4], r[5], r[6]
        )

    async def configurations(self, organization_id: str) -> list[ConfigurationRow]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT organization_id, alertname, threshold, enabled FROM alert_configurations"
                " WHERE organization_id = $1 ORDER BY alertname",
                organization_id,
            )
        return [ConfigurationRow(*r) for r in rows]

    async def save_preference(self, row: PreferenceRow, now: datetime, audit: AuditEntry) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO notification_preferences (organization_id, channels, recipients,
                    min_severity, quiet_hours_start, quiet_hours_end, timezone, updated_at)
                VALUES ($1, $2::jsonb, $3::jsonb, $4, $5, $6, $7, $8)
                ON CONFLICT (organization_id) DO UPDATE SET channels = excluded.channels,
                    recipients = excluded.recipients, min_severity = excluded.min_severity,
                    quiet_hours_start = excluded.quiet_hours_start,
                    quiet_hours_end = excluded.quiet_hours_end, timezone = excluded.timezone,
                    updated_at = excluded.updated_at
                """,
                row.organization_id,
                None if row.channels is None else encode_json(row.channels),
                encode_json(row.recipients),
                row.min_severity,
                row.quiet_hours_start,
                row.quiet_hours_end,
                row.timezone,
                now,
            )
            await insert_audit(conn, audit)

    async def save_configuration(
        self, row: ConfigurationRow, now: datetime, audit: AuditEntry
    ) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO alert_configurations (organization_id, alertname, threshold, enabled,
                    updated_at)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (organization_id, alertname) DO UPDATE SET
                    threshold = excluded.threshold, enabled = excluded.enabled,
                    updated_at = excluded.updated_at
                """,
                row.organization_id,
                row.alertname,
                row.threshold,
                row.enabled,
                now,
            )
            await insert_audit(conn, audit)

    async def delete_configuration(
        self, organization_id: str, alertname: str, audit: AuditEntry
    ) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM alert_configurations WHERE organization_id = $1 AND alertname = $2",
                organization_id,
                alertname,
            )
            await insert_audit(conn, audit)
