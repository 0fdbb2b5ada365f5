"""What the reconciler (``bridge/reconcile.py``) reads and writes: the firing alert instances,
their suppression (``alert_suppression``), the stored alerts no Alertmanager has any more (which
the reconciler resolves through the ingest) and why they were resolved, and its own state in
``bridge_state``; and what the console reads of it.

Every write is idempotent and safe with several replicas reconciling at once: the ingest moves
a row from firing to resolved once (and only the replica whose ingest moved it records the
reason, which is never overwritten), the suppression is an upsert of what Alertmanager said,
"unreachable since" keeps the first replica's time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import decode_json, encode_json
from bridge.model import Alert
from bridge.storage.types import ALERT_TABLES

LAST_RECONCILED = "reconcile_last_at"
UNREACHABLE_SINCE = "reconcile_unreachable_since"
LAST_ERROR = "reconcile_error"
VANISHED = "vanished"
RESOLVED_SILENCED = "resolved while silenced"


@dataclass(frozen=True)
class FiringInstance:
    """A firing alert row, and whether it was silenced or inhibited when last reconciled."""

    table: str
    fingerprint: str
    starts_at: datetime
    silenced: bool


@dataclass(frozen=True)
class VanishedAlert:
    """A firing instance no Alertmanager has any more, and its alert as stored."""

    instance: FiringInstance
    alert: Alert


@dataclass(frozen=True)
class SuppressionUpdate:
    """What Alertmanager says of one instance now (both lists empty: active)."""

    table: str
    fingerprint: str
    starts_at: datetime
    silenced_by: list[dict[str, Any]] = field(default_factory=list)  # {"id", "ends_at"}
    inhibited_by: list[dict[str, Any]] = field(default_factory=list)  # {"fingerprint", "alertname"}


@dataclass(frozen=True)
class Suppression:
    """What the console shows of one instance."""

    silenced_by: list[dict[str, Any]]
    inhibited_by: list[dict[str, Any]]
    seen_at: datetime
    resolved_reason: str | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class ReconcileStatus:
    last_reconciled_at: datetime | None
    unreachable_since: datetime | None
    error: str


@dataclass(frozen=True)
class ReconciledRow:
    """An alert the reconciler resolved, for the Now page."""

    table: str
    id: int
    alertname: str
    organization_id: str | None
    summary: str
    reason: str
    resolved_at: datetime


Connect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


def _firing_sql() -> str:
    parts = [
        f"SELECT '{t}', a.fingerprint, a.starts_at,"  # noqa: S608 - table from ALERT_TABLES
        " coalesce(jsonb_array_length(s.silenced_by) > 0"
        " OR jsonb_array_length(s.inhibited_by) > 0, FALSE)"
        f" FROM {t} a LEFT JOIN alert_suppression s"
        " ON s.fingerprint = a.fingerprint AND s.starts_at = a.starts_at"
        " WHERE a.status = 'firing'"
        for t in ALERT_TABLES
    ]
    return " UNION ALL ".join(parts)


_FIRING_SQL = _firing_sql()


class ReconcileWrites:
    """The reconciler's queries (a mixin of ``Storage``: its ``_conn``)."""

    _conn: Connect

    async def firing_instances(self) -> list[FiringInstance]:
        async with self._conn() as conn:
            rows = await conn.fetch(_FIRING_SQL)
        return [FiringInstance(r[0], r[1], r[2], r[3]) for r in rows]

    async def record_suppression(self, updates: Sequence[SuppressionUpdate], now: datetime) -> None:
        """Store what Alertmanager says of these instances; an unchanged row is not rewritten
        (only its ``seen_at`` would move, which retention alone reads)."""
        if not updates:
            return
        async with self._conn() as conn:
            await conn.execute(
                """
                INSERT INTO alert_suppression AS s (fingerprint, starts_at, alert_table,
                    silenced_by, inhibited_by, seen_at)
                SELECT f, st, t, sb::jsonb, ib::jsonb, $6
                FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[])
                    AS u(f, st, t, sb, ib)
                ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
                    silenced_by = excluded.silenced_by, inhibited_by = excluded.inhibited_by,
                    seen_at = excluded.seen_at
                WHERE s.resolved_reason IS NULL AND (s.silenced_by <> excluded.silenced_by
                    OR s.inhibited_by <> excluded.inhibited_by
                    OR s.seen_at < excluded.seen_at - interval '1 hour')
                """,
                [u.fingerprint for u in updates],
                [u.starts_at for u in updates],
                [u.table for u in updates],
                [encode_json(u.silenced_by) for u in updates],
                [encode_json(u.inhibited_by) for u in updates],
                now,
            )

    async def vanished_alerts(self, instances: Sequence[FiringInstance]) -> list[VanishedAlert]:
        """These instances as stored, those still firing: what the reconciler resolves through
        the ingest, like Alertmanager's own resolve would have been."""
        found: list[VanishedAlert] = []
        async with self._conn() as conn:
            for table in sorted({i.table for i in instances}):
                if table not in ALERT_TABLES:
                    raise ValueError(f"not an alert table: {table}")
                mine = [i for i in instances if i.table == table]
                rows = await conn.fetch(
                    f"SELECT t.fingerprint, t.starts_at, t.labels::text, t.annotations::text,"  # noqa: S608 - table checked against ALERT_TABLES
                    f" t.generator_url FROM {table} t"
                    " JOIN unnest($1::text[], $2::timestamptz[]) AS u(f, s)"
                    " ON t.fingerprint = u.f AND t.starts_at = u.s WHERE t.status = 'firing'"
                    " ORDER BY t.fingerprint, t.starts_at",
                    [i.fingerprint for i in mine],
                    [i.starts_at for i in mine],
                )
                by_key = {(i.fingerprint, i.starts_at): i for i in mine}
                for r in rows:
                    alert = Alert(
                        fingerprint=r[0],
                        status="firing",
                        labels=decode_json(r[2]) or {},
                        annotations=decode_json(r[3]) or {},
                        starts_at=r[1],
                        ends_at=None,
                        generator_url=r[4],
                    )
                    found.append(VanishedAlert(by_key[(r[0], r[1])], alert))
        return found

    async def record_vanished(
        self, instances: Sequence[FiringInstance], now: datetime
    ) -> list[tuple[FiringInstance, str]]:
        """Why and when the reconciler resolved these instances (``vanished``, or ``resolved
        while silenced`` when their stored suppression names a silence); an instance whose
        reason is recorded already keeps it. The ones this call recorded, with their reason."""
        if not instances:
            return []
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                INSERT INTO alert_suppression AS s (fingerprint, starts_at, alert_table,
                    seen_at, resolved_reason, resolved_at)
                SELECT f, st, t, $4, $5, $4
                FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(f, st, t)
                ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
                    resolved_reason = CASE WHEN jsonb_array_length(s.silenced_by) > 0
                        THEN $6 ELSE $5 END,
                    resolved_at = excluded.resolved_at, seen_at = excluded.seen_at
                WHERE s.resolved_reason IS NULL
                RETURNING fingerprint, starts_at, resolved_reason
                """,
                [i.fingerprint for i in instances],
                [i.starts_at for i in instances],
                [i.table for i in instances],
                now,
                VANISHED,
                RESOLVED_SILENCED,
            )
        by_key = {(i.fingerprint, i.starts_at): i for i in instances}
        return [(by_key[(r[0], r[1])], r[2]) for r in rows]

    async def reconciled(self, now: datetime) -> None:
        """Every Alertmanager answered: the last reconcile is now, none is unreachable."""
        async with self._conn() as conn:
            await conn.execute(
                "WITH gone AS (DELETE FROM bridge_state WHERE key = ANY($3::text[]))"
                " INSERT INTO bridge_state (key, value, updated_at) VALUES ($1, $2, $4)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                LAST_RECONCILED,
                now.isoformat(),
                [UNREACHABLE_SINCE, LAST_ERROR],
                now,
            )

    async def reconcile_failed(self, error: str, now: datetime, *, unreachable: bool) -> None:
        """Some (``unreachable``: every) Alertmanager did not answer; the first replica's time
        of the first failure is kept."""
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO bridge_state (key, value, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                LAST_ERROR,
                error,
                now,
            )
            if unreachable:
                await conn.execute(
                    "INSERT INTO bridge_state (key, value, updated_at) VALUES ($1, $2, $3)"
                    " ON CONFLICT (key) DO NOTHING",
                    UNREACHABLE_SINCE,
                    now.isoformat(),
                    now,
                )


class ReconcileReads:
    """What the console reads of the reconciler's work (a mixin of ``ConsoleQueries``)."""

    _conn: Connect

    async def suppressions(
        self, instances: Sequence[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], Suppression]:
        if not instances:
            return {}
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT s.fingerprint, s.starts_at, s.silenced_by::text, s.inhibited_by::text,"
                " s.seen_at, s.resolved_reason, s.resolved_at FROM alert_suppression s"
                " JOIN unnest($1::text[], $2::timestamptz[]) AS i(f, st)"
                " ON s.fingerprint = i.f AND s.starts_at = i.st",
                [i[0] for i in instances],
                [i[1] for i in instances],
            )
        return {
            (r[0], r[1]): Suppression(
                decode_json(r[2]) or [], decode_json(r[3]) or [], r[4], r[5], r[6]
            )
            for r in rows
        }

    async def recently_reconciled(self, since: datetime, limit: int) -> list[ReconciledRow]:
        """Alerts the reconciler resolved since then, newest first."""
        parts = " UNION ALL ".join(
            f"SELECT '{t}' AS tbl, a.id, a.alertname, a.organization_id, a.summary"  # noqa: S608
            f" FROM {t} a WHERE a.fingerprint = s.fingerprint AND a.starts_at = s.starts_at"
            for t in ALERT_TABLES
        )
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT x.tbl, x.id, x.alertname, x.organization_id, x.summary,"  # noqa: S608
                " s.resolved_reason, s.resolved_at FROM alert_suppression s"
                f" CROSS JOIN LATERAL ({parts}) x"
                " WHERE s.resolved_at >= $1 ORDER BY s.resolved_at DESC LIMIT $2",
                since,
                limit,
            )
        return [ReconciledRow(*r) for r in rows]

    async def reconcile_status(self) -> ReconcileStatus:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT key, value FROM bridge_state WHERE key = ANY($1::text[])",
                [LAST_RECONCILED, UNREACHABLE_SINCE, LAST_ERROR],
            )
        values = {r[0]: r[1] for r in rows}
        return ReconcileStatus(
            _time(values.get(LAST_RECONCILED)),
            _time(values.get(UNREACHABLE_SINCE)),
            values.get(LAST_ERROR, ""),
        )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
