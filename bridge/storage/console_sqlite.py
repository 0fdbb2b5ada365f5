"""The console's queries on SQLite (see ``console.py`` for what each one means)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import aiosqlite

from bridge.codec import decode_json, encode_json
from bridge.storage.base import ALERT_TABLES, ConfigurationRow, PreferenceRow
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
    Review,
    ReviewRow,
)
from bridge.storage.sqlite_tx import parse_time, parse_ts, ts

_ALERT_COLUMNS = (
    "id, fingerprint, alertname, status, severity, organization_id, summary, description,"
    " labels, annotations, generator_url, starts_at, ends_at, received_at, updated_at"
)


def _alert(table: str, r: Any) -> AlertRow:
    return AlertRow(
        table,
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        decode_json(r[8]) or {},
        decode_json(r[9]) or {},
        r[10],
        parse_ts(r[11]),  # type: ignore[arg-type]
        parse_ts(r[12]),
        parse_ts(r[13]),  # type: ignore[arg-type]
        parse_ts(r[14]),  # type: ignore[arg-type]
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _delivery(r: Any) -> DeliveryRow:
    message = decode_json(r[8]) or {}
    starts = {
        a["fingerprint"]: datetime.fromisoformat(a["starts_at"])
        for a in message.get("alerts", ())
        if "fingerprint" in a and "starts_at" in a
    }
    return DeliveryRow(
        r[0],
        r[1],
        r[2],
        r[3],
        parse_ts(r[4]),  # type: ignore[arg-type]
        parse_ts(r[5]),  # type: ignore[arg-type]
        parse_ts(r[6]),
        r[7],
        message.get("status", ""),
        message.get("notice", ""),
        starts,
    )


async def _audit(db: aiosqlite.Connection, entry: AuditEntry) -> None:
    await db.execute(
        "INSERT INTO console_audit (at, username, action, fingerprint, starts_at, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            ts(entry.at),
            entry.username,
            entry.action,
            entry.fingerprint,
            ts(entry.starts_at),
            encode_json(entry.detail),
        ),
    )


def _audit_row(r: Any) -> AuditEntry:
    return AuditEntry(parse_ts(r[0]), r[1], r[2], r[3], parse_ts(r[4]), decode_json(r[5]) or {})  # type: ignore[arg-type]


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not values:
        return None
    values = sorted(values)
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class SqliteConsole(ConsoleStore):
    def __init__(
        self, locked: Callable[..., AbstractAsyncContextManager[aiosqlite.Connection]]
    ) -> None:
        self._locked = locked

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        async with self._locked(write=False) as db:
            cursor = await db.execute(sql, args)
            return list(await cursor.fetchall())

    async def upsert_user(
        self, username: str, password_hash: str, role: str, now: datetime
    ) -> None:
        async with self._locked(write=True) as db:
            await db.execute(
                """
                INSERT INTO console_users (username, password_hash, role, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,
                    role = excluded.role, updated_at = excluded.updated_at,
                    session_epoch = console_users.session_epoch + 1
                """,
                (username, password_hash, role, ts(now), ts(now)),
            )

    async def get_user(self, username: str) -> ConsoleUser | None:
        rows = await self._fetch(
            "SELECT username, password_hash, role, session_epoch FROM console_users"
            " WHERE username = ?",
            (username,),
        )
        return ConsoleUser(*rows[0]) if rows else None

    async def list_users(self) -> list[ConsoleUser]:
        rows = await self._fetch(
            "SELECT username, '', role, session_epoch FROM console_users ORDER BY username"
        )
        return [ConsoleUser(*r) for r in rows]

    async def end_sessions(self, username: str, audit: AuditEntry) -> None:
        async with self._locked(write=True) as db:
            await db.execute(
                "UPDATE console_users SET session_epoch = session_epoch + 1 WHERE username = ?",
                (username,),
            )
            await _audit(db, audit)

    async def firing(self, limit: int) -> list[AlertRow]:
        rows: list[AlertRow] = []
        for table in ALERT_TABLES:
            found = await self._fetch(
                f"SELECT {_ALERT_COLUMNS} FROM {table} WHERE status = 'firing'"  # noqa: S608
                " ORDER BY starts_at DESC LIMIT ?",
                (limit,),
            )
            rows.extend(_alert(table, r) for r in found)
        rows.sort(key=lambda a: a.starts_at, reverse=True)
        return rows[:limit]

    async def alert(self, table: str, id: int) -> AlertRow | None:
        if table not in ALERT_TABLES:
            return None
        rows = await self._fetch(
            f"SELECT {_ALERT_COLUMNS} FROM {table} WHERE id = ?",  # noqa: S608
            (id,),
        )
        return _alert(table, rows[0]) if rows else None

    async def deliveries(self, fingerprints: Sequence[str]) -> list[DeliveryRow]:
        unique = sorted(set(fingerprints))
        if not unique:
            return []
        marks = ", ".join("?" * len(unique))
        rows = await self._fetch(
            f"""
            SELECT d.id, d.channel, d.state, d.attempts, d.created_at, d.next_attempt_at,
                   d.finished_at, d.last_error, d.message
            FROM alert_deliveries d
            WHERE d.id IN (SELECT delivery_id FROM delivery_alerts WHERE fingerprint IN ({marks}))
            ORDER BY d.id
            """,  # noqa: S608 - placeholders only
            unique,
        )
        return [_delivery(r) for r in rows]

    async def attempts(self, delivery_ids: Sequence[int]) -> list[Attempt]:
        found: list[Attempt] = []
        ids = sorted(set(delivery_ids))
        for start in range(0, len(ids), 400):
            chunk = ids[start : start + 400]
            marks = ", ".join("?" * len(chunk))
            rows = await self._fetch(
                "SELECT delivery_id, attempt, result, error, at, id FROM delivery_attempts"  # noqa: S608
                f" WHERE delivery_id IN ({marks})",
                chunk,
            )
            found += [Attempt(r[0], r[1], r[2], r[3], parse_ts(r[4])) for r in rows]  # type: ignore[arg-type]
        return sorted(found, key=lambda a: (a.at, a.delivery_id, a.attempt))

    async def acknowledgements(
        self, instances: Sequence[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], Acknowledgement]:
        found: dict[tuple[str, datetime], Acknowledgement] = {}
        wanted = {(f, ts(s)) for f, s in instances}
        fingerprints = sorted({f for f, _ in wanted})
        for start in range(0, len(fingerprints), 400):
            chunk = fingerprints[start : start + 400]
            marks = ", ".join("?" * len(chunk))
            rows = await self._fetch(
                "SELECT fingerprint, starts_at, alert_table, severity, username, note, created_at"  # noqa: S608
                f" FROM alert_acknowledgements WHERE fingerprint IN ({marks})",
                chunk,
            )
            for r in rows:
                if (r[0], r[1]) in wanted:
                    ack = Acknowledgement(
                        r[0],
                        parse_ts(r[1]),
                        r[2],
                        r[3],
                        r[4],
                        r[5],
                        parse_ts(r[6]),  # type: ignore[arg-type]
                    )
                    found[(ack.fingerprint, ack.starts_at)] = ack
        return found

    async def acknowledge(self, ack: Acknowledgement, audit: AuditEntry) -> bool:
        async with self._locked(write=True) as db:
            cursor = await db.execute(
                """
                INSERT INTO alert_acknowledgements (fingerprint, starts_at, alert_table, severity,
                    username, note, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                (
                    ack.fingerprint,
                    ts(ack.starts_at),
                    ack.alert_table,
                    ack.severity,
                    ack.username,
                    ack.note,
                    ts(ack.created_at),
                ),
            )
            if cursor.rowcount == 0:
                return False
            await _audit(db, audit)
        return True

    async def audit(self, entry: AuditEntry) -> None:
        async with self._locked(write=True) as db:
            await _audit(db, entry)

    async def audit_for(self, fingerprint: str, starts_at: datetime) -> list[AuditEntry]:
        rows = await self._fetch(
            "SELECT at, username, action, fingerprint, starts_at, detail FROM console_audit"
            " WHERE fingerprint = ? AND starts_at = ? ORDER BY id",
            (fingerprint, ts(starts_at)),
        )
        return [_audit_row(r) for r in rows]

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        rows = await self._fetch(
            "SELECT at, username, action, fingerprint, starts_at, detail FROM console_audit"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_audit_row(r) for r in rows]

    async def retry_dead(self, delivery_id: int, now: datetime, audit: AuditEntry) -> bool:
        async with self._locked(write=True) as db:
            cursor = await db.execute(
                "UPDATE alert_deliveries SET state = 'pending', next_attempt_at = ?,"
                " created_at = ?, finished_at = NULL, locked_until = NULL, attempts = 0"
                " WHERE id = ? AND state = 'dead'",
                (ts(now), ts(now), delivery_id),
            )
            if cursor.rowcount == 0:
                return False
            await _audit(db, audit)
        return True

    async def history(
        self, where: HistoryFilter, cursor: Cursor | None, limit: int
    ) -> list[AlertRow]:
        common: list[str] = []
        common_args: list[Any] = []
        for column, value in (
            ("severity", where.severity),
            ("organization_id", where.organization_id),
            ("alertname", where.alertname),
            ("status", where.status),
        ):
            if value:
                common.append(f"{column} = ?")
                common_args.append(value)
        if where.since:
            common.append("starts_at >= ?")
            common_args.append(ts(where.since))
        if where.until:
            common.append("starts_at < ?")
            common_args.append(ts(where.until))
        if where.text:
            common.append(
                "(summary || ' ' || alertname || ' ' || coalesce(organization_id, ''))"
                " LIKE ? ESCAPE '\\'"
            )
            common_args.append(_like(where.text))
        parts: list[str] = []
        args: list[Any] = []
        for table in where.tables():
            conditions = list(common)
            table_args = list(common_args)
            if cursor is not None:
                op, same = cursor.condition(table)
                if same:
                    conditions.append("(starts_at < ? OR (starts_at = ? AND id < ?))")
                    table_args += [ts(cursor.starts_at), ts(cursor.starts_at), cursor.id]
                else:
                    conditions.append(f"starts_at {'<=' if op == 'le' else '<'} ?")
                    table_args.append(ts(cursor.starts_at))
            clause = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            parts.append(
                f"SELECT * FROM (SELECT '{table}' AS tbl, {_ALERT_COLUMNS} FROM {table} {clause}"  # noqa: S608
                " ORDER BY starts_at DESC, id DESC LIMIT ?)"
            )
            args += [*table_args, limit]
        sql = " UNION ALL ".join(parts) + " ORDER BY 13 DESC, 1 DESC, 2 DESC LIMIT ?"
        rows = await self._fetch(sql, [*args, limit])
        return [_alert(r[0], r[1:]) for r in rows]

    async def organizations(self, since: datetime) -> list[str]:
        recent = " UNION ".join(
            f"SELECT DISTINCT organization_id FROM {t}"  # noqa: S608
            " WHERE organization_id IS NOT NULL"
            " AND starts_at > ?"
            for t in ALERT_TABLES
        )
        rows = await self._fetch(
            "SELECT organization_id FROM notification_preferences UNION"  # noqa: S608
            f" SELECT organization_id FROM alert_configurations UNION {recent} ORDER BY 1",
            [ts(since)] * len(ALERT_TABLES),
        )
        return [r[0] for r in rows if r[0] != "*"]

    async def preference(self, organization_id: str) -> PreferenceRow | None:
        rows = await self._fetch(
            "SELECT organization_id, channels, recipients, min_severity, quiet_hours_start,"
            " quiet_hours_end, timezone FROM notification_preferences WHERE organization_id = ?",
            (organization_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return PreferenceRow(
            r[0],
            decode_json(r[1]),
            decode_json(r[2]) or {},
            r[3],
            parse_time(r[4]),
            parse_time(r[5]),
            r[6],
        )

    async def configurations(self, organization_id: str) -> list[ConfigurationRow]:
        rows = await self._fetch(
            "SELECT organization_id, alertname, threshold, enabled FROM alert_configurations"
            " WHERE organization_id = ? ORDER BY alertname",
            (organization_id,),
        )
        return [ConfigurationRow(r[0], r[1], r[2], bool(r[3])) for r in rows]

    async def save_preference(self, row: PreferenceRow, now: datetime, audit: AuditEntry) -> None:
        async with self._locked(write=True) as db:
            await db.execute(
                """
                INSERT INTO notification_preferences (organization_id, channels, recipients,
                    min_severity, quiet_hours_start, quiet_hours_end, timezone, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (organization_id) DO UPDATE SET channels = excluded.channels,
                    recipients = excluded.recipients, min_severity = excluded.min_severity,
                    quiet_hours_start = excluded.quiet_hours_start,
                    quiet_hours_end = excluded.quiet_hours_end, timezone = excluded.timezone,
                    updated_at = excluded.updated_at
                """,
                (
                    row.organization_id,
                    None if row.channels is None else encode_json(row.channels),
                    encode_json(row.recipients),
                    row.min_severity,
                    row.quiet_hours_start.isoformat() if row.quiet_hours_start else None,
                    row.quiet_hours_end.isoformat() if row.quiet_hours_end else None,
                    row.timezone,
                    ts(now),
                ),
            )
            await _audit(db, audit)

    async def save_configuration(
        self, row: ConfigurationRow, now: datetime, audit: AuditEntry
    ) -> None:
        async with self._locked(write=True) as db:
            await db.execute(
                """
                INSERT INTO alert_configurations (organization_id, alertname, threshold, enabled,
                    updated_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (organization_id, alertname) DO UPDATE SET
                    threshold = excluded.threshold, enabled = excluded.enabled,
                    updated_at = excluded.updated_at
                """,
                (row.organization_id, row.alertname, row.threshold, int(row.enabled), ts(now)),
            )
            await _audit(db, audit)

    async def delete_configuration(
        self, organization_id: str, alertname: str, audit: AuditEntry
    ) -> None:
        async with self._locked(write=True) as db:
            await db.execute(
                "DELETE FROM alert_configurations WHERE organization_id = ? AND alertname = ?",
                (organization_id, alertname),
            )
            await _audit(db, audit)

    async def review(
        self, since: datetime, until: datetime, self_resolve_seconds: float, limit: int
    ) -> Review:
        union = " UNION ALL ".join(
            "SELECT fingerprint, alertname, organization_id, status, starts_at, ends_at"  # noqa: S608
            f" FROM {t} WHERE starts_at >= ? AND starts_at < ?"
            for t in ALERT_TABLES
        )
        bounds = [ts(since), ts(until)] * len(ALERT_TABLES)
        rows = await self._fetch(
            f"""
            SELECT a.fingerprint, a.alertname, a.organization_id, a.status, a.starts_at,
                   a.ends_at, k.created_at
            FROM ({union}) a LEFT JOIN alert_acknowledgements k
              ON k.fingerprint = a.fingerprint AND k.starts_at = a.starts_at
            """,  # noqa: S608
            bounds,
        )
        groups: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
        daily: dict[str, int] = defaultdict(int)
        orgs: dict[str, int] = defaultdict(int)
        for r in rows:
            groups[(r[1], r[2])].append(r)
            daily[r[4][:10]] += 1
            if r[2] is not None:
                orgs[r[2]] += 1
        out = []
        for (name, org), items in groups.items():
            acks, resolves, self_resolved = [], [], 0
            for r in items:
                start = parse_ts(r[4])
                assert start is not None
                if r[6] is not None:
                    acks.append((parse_ts(r[6]) - start).total_seconds())  # type: ignore[operator]
                if r[3] == "resolved" and r[5] is not None:
                    seconds = (parse_ts(r[5]) - start).total_seconds()  # type: ignore[operator]
                    resolves.append(seconds)
                    if r[6] is None and seconds < self_resolve_seconds:
                        self_resolved += 1
            out.append(
                ReviewRow(
                    name,
                    org,
                    len(items),
                    self_resolved,
                    len(items) - len({r[0] for r in items}),
                    _percentile(acks, 0.5),
                    _percentile(acks, 0.9),
                    _percentile(resolves, 0.5),
                    _percentile(resolves, 0.9),
                )
            )
        out.sort(key=lambda r: (-r.fired, r.alertname, r.organization_id or ""))
        pages = await self._fetch(
            "SELECT channel, count(*) FROM alert_deliveries WHERE state = 'sent'"
            " AND created_at >= ? AND created_at < ? GROUP BY channel ORDER BY channel",
            (ts(since), ts(until)),
        )
        noisiest = sorted(orgs.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        return Review(out[:limit], {r[0]: r[1] for r in pages}, sorted(daily.items()), noisiest)
