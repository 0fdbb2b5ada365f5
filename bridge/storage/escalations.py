"""Escalations and the actions on incidents, in a ``Transaction``.

The engine claims due escalations with ``FOR UPDATE SKIP LOCKED`` (a replica never waits for
another's step, and never sends it again: the row it skipped is written before the other
commits), and writes the step's deliveries, who it notified, the incident's timeline and the
next due time in the same transaction. Actions lock the incident row, so that an acknowledgement
and a step due at the same moment are applied one after the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import decode_json, encode_json
from bridge.oncall.escalation import NewEscalation, Page, Walk
from bridge.oncall.schedule import Override


@dataclass(frozen=True)
class DueEscalation:
    incident_id: int
    policy_id: str
    walk: Walk
    message: bytes
    incident_status: str
    incident_title: str
    snoozed_until: datetime | None = None  # the incident's snooze: its steps wait till then


@dataclass(frozen=True)
class IncidentState:
    id: int
    status: str
    title: str
    severity: str
    alertnames: list[str]
    labels: dict[str, str]
    organizations: list[str] = field(default_factory=list)  # every one it touches


_INCIDENT_STATE = "id, status, title, severity, alertnames, labels::text, organizations"


def _incident_state(row: asyncpg.Record | None) -> IncidentState | None:
    if row is None:
        return None
    return IncidentState(
        row[0], row[1], row[2], row[3], list(row[4]), decode_json(row[5]), list(row[6])
    )


class EscalationWrites:
    """The escalation operations of a ``Transaction`` (on its connection, ``conn``)."""

    conn: asyncpg.Connection

    async def start_escalations(self, rows: Sequence[NewEscalation], now: datetime) -> int:
        """Start the walks of newly routed incidents, where each ``walk`` stands (a new one at
        step 1; a merge's survivor where the absorbed incident's stood); an incident that has
        one keeps it."""
        if not rows:
            return 0
        status = await self.conn.execute(
            """INSERT INTO escalations (incident_id, policy_id, state, step, round, next_at,
                   message, labels, started_at, updated_at)
               SELECT i, p, st, sp, rd, n, m, l::jsonb, $6, $6
               FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                           $7::text[], $8::int[], $9::int[])
                   AS u(i, p, n, m, l, st, sp, rd)
               ON CONFLICT (incident_id) DO NOTHING""",
            [r.incident_id for r in rows],
            [r.policy_id for r in rows],
            [r.walk.next_at for r in rows],
            [r.message.decode() for r in rows],
            [encode_json(dict(r.labels)) for r in rows],
            now,
            [r.walk.state for r in rows],
            [r.walk.step for r in rows],
            [r.walk.round for r in rows],
        )
        return int(status.rsplit(" ", 1)[-1])

    async def claim_due_escalations(self, now: datetime, limit: int) -> list[DueEscalation]:
        """Due escalations, locked until commit; rows another replica holds are skipped."""
        rows = await self.conn.fetch(
            """SELECT e.incident_id, e.policy_id, e.state, e.step, e.round, e.next_at,
                      e.message, i.status, i.title, i.snoozed_until
               FROM escalations e JOIN incidents i ON i.id = e.incident_id
               WHERE e.next_at IS NOT NULL AND e.next_at <= $1
               ORDER BY e.next_at
               LIMIT $2
               FOR UPDATE OF e SKIP LOCKED""",
            now,
            limit,
        )
        return [
            DueEscalation(r[0], r[1], Walk(r[2], r[3], r[4], r[5]), r[6].encode(), r[7], r[8], r[9])
            for r in rows
        ]

    async def escalation_for_update(self, incident_id: int) -> tuple[str, Walk] | None:
        row = await self.conn.fetchrow(
            "SELECT policy_id, state, step, round, next_at FROM escalations"
            " WHERE incident_id = $1 FOR UPDATE",
            incident_id,
        )
        return None if row is None else (row[0], Walk(row[1], row[2], row[3], row[4]))

    async def save_walk(self, incident_id: int, walk: Walk, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE escalations SET state = $2, step = $3, round = $4, next_at = $5,"
            " updated_at = $6 WHERE incident_id = $1",
            incident_id,
            walk.state,
            walk.step,
            walk.round,
            walk.next_at,
            now,
        )

    async def record_pages(
        self, incident_id: int, pages: Sequence[Page], step: int, round_: int, now: datetime
    ) -> None:
        if not pages:
            return
        await self.conn.execute(
            """INSERT INTO escalation_notifications
                   (incident_id, person_id, via, address, step, round, at)
               SELECT $1, p, v, a, $5, $6, $7
               FROM unnest($2::text[], $3::text[], $4::text[]) AS u(p, v, a)""",
            incident_id,
            [p.person_id for p in pages],
            [p.via for p in pages],
            [p.address for p in pages],
            step,
            round_,
            now,
        )

    async def add_incident_event(
        self, incident_id: int, kind: str, detail: Mapping[str, Any], now: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO incident_events (incident_id, at, kind, detail)"
            " VALUES ($1, $2, $3, $4::jsonb)",
            incident_id,
            now,
            kind,
            encode_json(dict(detail)),
        )

    async def overrides_at(self, now: datetime) -> list[Override]:
        """The on-call overrides in force at ``now``."""
        rows = await self.conn.fetch(
            "SELECT id, schedule_id, person_id, replaces, starts_at, ends_at"
            " FROM oncall_overrides WHERE starts_at <= $1 AND ends_at > $1 ORDER BY id",
            now,
        )
        return [Override(*r) for r in rows]

    async def incident_for_update(self, incident_id: int) -> IncidentState | None:
        row = await self.conn.fetchrow(
            f"SELECT {_INCIDENT_STATE} FROM incidents WHERE id = $1 FOR UPDATE",  # noqa: S608
            incident_id,
        )
        return _incident_state(row)

    async def set_incident_status(self, incident_id: int, status: str, now: datetime) -> None:
        """Acknowledge, resolve or re-open (``firing``) an incident by hand or by expiry."""
        await self.conn.execute(
            """UPDATE incidents SET status = $2, updated_at = $3,
                   acknowledged_at = CASE WHEN $2 = 'acknowledged' THEN $3
                                          WHEN $2 = 'firing' THEN NULL
                                          ELSE acknowledged_at END,
                   resolved_at = CASE WHEN $2 = 'resolved' THEN $3 ELSE resolved_at END
               WHERE id = $1""",
            incident_id,
            status,
            now,
        )

    async def newest_paged_incident(self, person_id: str) -> int | None:
        """The newest open incident whose escalation notified this person."""
        return await self.conn.fetchval(
            """SELECT n.incident_id FROM escalation_notifications n
               JOIN incidents i ON i.id = n.incident_id
               WHERE n.person_id = $1 AND i.status <> 'resolved'
               ORDER BY n.at DESC, n.id DESC LIMIT 1""",
            person_id,
        )

    async def open_incident_by_dedup_key(self, key: str) -> int | None:
        """The open incident whose PagerDuty dedup_key (sha256 hex of ``incident:<id>``, see
        ``bridge.channels.pagerduty.incident_dedup_key``) is ``key``: the open incidents are
        few, so each one's key is computed here rather than stored."""
        return await self.conn.fetchval(
            """SELECT id FROM incidents WHERE status <> 'resolved'
               AND encode(sha256(convert_to('incident:' || id::text, 'UTF8')), 'hex') = $1
               LIMIT 1""",
            key.lower(),
        )

    async def first_seen(self, source: str, request_id: str, now: datetime) -> bool:
        """Record a signed inbound request; False when it was seen before (a replay)."""
        row = await self.conn.fetchval(
            "INSERT INTO inbound_requests (source, request_id, at) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            source,
            request_id,
            now,
        )
        return row is not None

    async def forget_inbound(self, source: str, request_id: str) -> None:
        await self.conn.execute(
            "DELETE FROM inbound_requests WHERE source = $1 AND request_id = $2",
            source,
            request_id,
        )

    async def incident_summary(self, incident_id: int) -> IncidentState | None:
        """The incident as its pages describe it (no lock: for reading)."""
        row = await self.conn.fetchrow(
            f"SELECT {_INCIDENT_STATE} FROM incidents WHERE id = $1",  # noqa: S608
            incident_id,
        )
        return _incident_state(row)
