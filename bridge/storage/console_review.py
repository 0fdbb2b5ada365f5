"""The console's review queries (a mixin of ``ConsoleQueries``): fires, response times and
noise per alert name and organization, the flapping label sets, acknowledgement times per
person and the pages each person got; every one limited to a scope of organizations when
given (alerts of those organizations; incidents touching them)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from bridge.codec import decode_json
from bridge.storage.console import Review, ReviewRow, Scope
from bridge.storage.types import ALERT_TABLES


# an alert table's rows in [$1, $2) within the scope $n (NULL: every organization)
def _union(columns: str, scope_arg: int) -> str:
    where = (
        f"starts_at >= $1 AND starts_at < $2 AND (${scope_arg}::text[] IS NULL"
        f" OR organization_id = ANY(${scope_arg}::text[]))"
    )
    return " UNION ALL ".join(
        f"SELECT {columns} FROM {t} WHERE {where}"  # noqa: S608 - fixed names
        for t in ALERT_TABLES
    )


def _scope(scope: Scope) -> list[str] | None:
    return None if scope is None else list(scope)


@dataclass(frozen=True)
class FlappingRow:
    """One label set (fingerprint) that fired and resolved again and again in the period."""

    fingerprint: str
    alertname: str
    organization_id: str | None
    labels: dict[str, str]  # its latest instance's
    fired: int
    resolved: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class AckTimes:
    """How fast one person acknowledged the incidents they acknowledged first, counted from
    the incident's first page (its first ``paged`` or ``escalation_step``; its opening when
    nobody was paged)."""

    person: str
    count: int
    median: float
    p90: float
    vias: tuple[str, ...]


@dataclass(frozen=True)
class PageToPerson:
    """One escalation step reaching one person (by every way it used at once)."""

    person_id: str
    at: datetime
    vias: tuple[str, ...]


class ReviewReads:
    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def review(
        self,
        since: datetime,
        until: datetime,
        self_resolve_seconds: float,
        limit: int,
        within: Scope = None,
    ) -> Review:
        union = _union("fingerprint, alertname, organization_id, status, starts_at, ends_at", 4)
        scope = _scope(within)
        async with self._conn() as conn, conn.transaction():
            # the aggregates sort tens of thousands of rows: in memory, for this transaction only
            await conn.execute("SET LOCAL work_mem = '64MB'")
            rows = await conn.fetch(
                f"""
                WITH a AS ({union}),
                j AS (
                    SELECT a.fingerprint, a.alertname, a.organization_id,
                        EXTRACT(EPOCH FROM k.created_at - a.starts_at) AS ack_s,
                        CASE WHEN a.status = 'resolved'
                             THEN EXTRACT(EPOCH FROM a.ends_at - a.starts_at) END AS res_s,
                        k.fingerprint IS NOT NULL AS acked
                    FROM a LEFT JOIN alert_acknowledgements k
                      ON k.fingerprint = a.fingerprint AND k.starts_at = a.starts_at
                )
                SELECT alertname, organization_id, count(*) AS fired,
                    count(*) FILTER (WHERE NOT acked AND res_s < $3) AS self_resolved,
                    count(*) - count(DISTINCT fingerprint) AS refires,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY ack_s),
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY ack_s),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY res_s),
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY res_s)
                FROM j GROUP BY alertname, organization_id
                ORDER BY fired DESC, alertname, organization_id
                """,  # noqa: S608 - fixed table names
                since,
                until,
                self_resolve_seconds,
                scope,
            )
            # a delivery counts for a scoped viewer when it carried an alert of theirs
            exists = " UNION ALL ".join(
                f"SELECT 1 FROM {t} WHERE {t}.fingerprint = da.fingerprint"  # noqa: S608
                f" AND {t}.organization_id = ANY($3::text[])"
                for t in ALERT_TABLES
            )
            pages = await conn.fetch(
                f"""
                SELECT channel, count(*) FROM alert_deliveries d
                WHERE state = 'sent' AND created_at >= $1 AND created_at < $2
                  AND ($3::text[] IS NULL OR EXISTS (
                      SELECT 1 FROM delivery_alerts da
                      WHERE da.delivery_id = d.id AND EXISTS ({exists})))
                GROUP BY channel ORDER BY channel
                """,  # noqa: S608 - fixed table names
                since,
                until,
                scope,
            )
            daily = await conn.fetch(
                f"""
                SELECT to_char(date_trunc('day', starts_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD'),
                       count(*)
                FROM ({_union("starts_at", 3)}) a GROUP BY 1 ORDER BY 1
                """,  # noqa: S608 - fixed table names
                since,
                until,
                scope,
            )
        per_org: dict[str, int] = {}
        for r in rows:
            if r[1] is not None:
                per_org[r[1]] = per_org.get(r[1], 0) + r[2]
        noisiest = sorted(per_org.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        return Review(
            [ReviewRow(*r) for r in rows[:limit]],
            {r[0]: r[1] for r in pages},
            [(r[0], r[1]) for r in daily],
            noisiest,
        )

    async def flapping(
        self, since: datetime, until: datetime, at_least: int, limit: int, within: Scope = None
    ) -> list[FlappingRow]:
        union = _union("fingerprint, alertname, organization_id, status, labels, starts_at", 3)
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"""
                SELECT fingerprint, min(alertname), min(organization_id),
                    (array_agg(labels ORDER BY starts_at DESC))[1],
                    count(*), count(*) FILTER (WHERE status = 'resolved'),
                    min(starts_at), max(starts_at)
                FROM ({union}) a
                GROUP BY fingerprint
                HAVING count(*) FILTER (WHERE status = 'resolved') >= $4
                ORDER BY 6 DESC, 5 DESC, 2, 1 LIMIT $5
                """,  # noqa: S608 - fixed table names
                since,
                until,
                _scope(within),
                at_least,
                limit,
            )
        return [FlappingRow(r[0], r[1], r[2], _labels(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

    async def acknowledgement_times(
        self, since: datetime, until: datetime, within: Scope = None
    ) -> list[AckTimes]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                WITH inc AS (
                    SELECT id, opened_at FROM incidents
                    WHERE opened_at >= $1 AND opened_at < $2
                      AND ($3::text[] IS NULL OR organizations && $3::text[])
                ),
                paged AS (
                    SELECT e.incident_id, min(e.at) AS at
                    FROM incident_events e JOIN inc ON inc.id = e.incident_id
                    WHERE e.kind IN ('paged', 'escalation_step') GROUP BY e.incident_id
                ),
                ack AS (
                    SELECT DISTINCT ON (e.incident_id) e.incident_id, e.at,
                        COALESCE(e.detail->>'by', '') AS person,
                        COALESCE(e.detail->>'via', '') AS via
                    FROM incident_events e JOIN inc ON inc.id = e.incident_id
                    WHERE e.kind = 'acknowledged'
                    ORDER BY e.incident_id, e.at, e.id
                ),
                s AS (
                    SELECT ack.person, ack.via, GREATEST(EXTRACT(EPOCH FROM
                        ack.at - COALESCE(paged.at, inc.opened_at)), 0) AS seconds
                    FROM ack JOIN inc ON inc.id = ack.incident_id
                    LEFT JOIN paged ON paged.incident_id = ack.incident_id
                )
                SELECT person, count(*),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds),
                    array_agg(DISTINCT via)
                FROM s GROUP BY person ORDER BY 2 DESC, 1
                """,
                since,
                until,
                _scope(within),
            )
        return [
            AckTimes(r[0], r[1], float(r[2]), float(r[3]), tuple(v for v in r[4] if v))
            for r in rows
        ]

    async def pages_to_people(
        self, since: datetime, until: datetime, limit: int, within: Scope = None
    ) -> list[PageToPerson]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                SELECT n.person_id, min(n.at) AS at, array_agg(DISTINCT n.via)
                FROM escalation_notifications n JOIN incidents i ON i.id = n.incident_id
                WHERE n.at >= $1 AND n.at < $2
                  AND ($3::text[] IS NULL OR i.organizations && $3::text[])
                GROUP BY n.person_id, n.incident_id, n.step, n.round
                ORDER BY at, 1 LIMIT $4
                """,
                since,
                until,
                _scope(within),
                limit,
            )
        return [PageToPerson(r[0], r[1], tuple(r[2])) for r in rows]


def _labels(value: Any) -> dict[str, str]:
    decoded = decode_json(value) if isinstance(value, str) else value
    return {str(k): str(v) for k, v in (decoded or {}).items()}


class ReviewStore(Protocol):
    """The review's queries (``Storage.console()`` gives them; ``ConsoleStore`` has ``review``)."""

    async def review(
        self,
        since: datetime,
        until: datetime,
        self_resolve_seconds: float,
        limit: int,
        within: Scope = None,
    ) -> Review: ...

    async def flapping(
        self, since: datetime, until: datetime, at_least: int, limit: int, within: Scope = None
    ) -> list[FlappingRow]:
        """Label sets that fired and resolved at least ``at_least`` times (instances started
        in the period), most resolves first."""

    async def acknowledgement_times(
        self, since: datetime, until: datetime, within: Scope = None
    ) -> list[AckTimes]:
        """Per person, the incidents opened in the period they acknowledged first."""

    async def pages_to_people(
        self, since: datetime, until: datetime, limit: int, within: Scope = None
    ) -> list[PageToPerson]:
        """The escalation steps that reached someone in the period, oldest first."""
