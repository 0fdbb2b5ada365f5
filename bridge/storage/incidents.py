"""Incidents in the ingest transaction: the lock that serialises their assignment across
replicas, the open incidents with their alerts, and the write of what changed (the incident
rows, the alerts' ``incident_id``, the timeline in ``incident_events``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import decode_json, encode_json
from bridge.incidents import CausalMap, Incident, Member
from bridge.oncall.escalation import Walk
from bridge.storage.types import ALERT_TABLES

INCIDENT_LOCK = 0x696E_6369_6465  # "incide": held from reading the open incidents to commit

_MEMBERS_SQL = " UNION ALL ".join(
    "SELECT incident_id, fingerprint, starts_at, alertname, organization_id, severity, status,"  # noqa: S608 - fixed table names
    f" received_at FROM {t} WHERE incident_id = ANY($1::bigint[])"
    for t in ALERT_TABLES
)


# $1: an incident; the one that carries on for it (following merges of merges), or NULL when
# there is no such incident
SURVIVOR_SQL = """WITH RECURSIVE chain(id, next, depth) AS (
       SELECT id, merged_into, 0 FROM incidents WHERE id = $1
       UNION ALL
       SELECT i.id, i.merged_into, c.depth + 1 FROM incidents i
       JOIN chain c ON i.id = c.next WHERE c.depth < 100)
   SELECT id FROM chain ORDER BY depth DESC LIMIT 1"""


@dataclass(frozen=True)
class IncidentRow:
    """An incident as stored (what the console and the tests read)."""

    id: int
    title: str
    severity: str
    status: str
    probable_cause: str
    alertnames: list[str]
    organizations: list[str]
    alert_count: int
    opened_at: datetime
    last_alert_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    paged_severity: str | None
    labels: dict[str, Any]
    merged_into: int | None = None  # absorbed by a merge: the incident that carries on


class IncidentWrites:
    """The incident operations of a ``Transaction`` (on its connection, ``conn``)."""

    conn: asyncpg.Connection

    async def lock_incidents(self) -> None:
        """Serialise incident assignment until commit (pooler-safe: transaction-scoped), so
        two replicas cannot open two incidents for one problem."""
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", INCIDENT_LOCK)

    async def reserve_incident_ids(self, n: int) -> list[int]:
        rows = await self.conn.fetch(
            "SELECT nextval('incidents_id_seq') FROM generate_series(1, $1)", n
        )
        return [r[0] for r in rows]

    async def open_incidents(self) -> list[Incident]:
        """The incidents not resolved yet, with their alerts (under ``lock_incidents``)."""
        rows = await self.conn.fetch(
            "SELECT id, opened_at, last_alert_at, status, paged_severity, labels::text"
            " FROM incidents WHERE status <> 'resolved' ORDER BY id"
        )
        incidents = {
            r[0]: Incident(r[0], r[1], r[2], r[3], r[4], labels=decode_json(r[5]) or {})
            for r in rows
        }
        if not incidents:
            return []
        for m in sorted(
            await self.conn.fetch(_MEMBERS_SQL, list(incidents)), key=lambda m: (m[7], m[1])
        ):
            incidents[m[0]].members.append(Member(m[1], m[2], m[3], m[4], m[5], m[6], m[7]))
        return list(incidents.values())

    async def save_incidents(
        self, incidents: Sequence[Incident], topology: CausalMap, now: datetime
    ) -> None:
        """Write the incidents a transaction changed: their rows, their alerts' incident_id
        and their new timeline entries, in one statement."""
        if not incidents:
            return
        values: list[Any] = [
            [i.id for i in incidents],
            [i.title(topology) for i in incidents],
            [i.severity for i in incidents],
            [i.status for i in incidents],
            [i.probable_cause(topology) for i in incidents],
            [encode_json(i.alertnames) for i in incidents],
            [encode_json(i.organizations) for i in incidents],
            [encode_json(i.labels) for i in incidents],
            [len(i.members) for i in incidents],
            [i.opened_at for i in incidents],
            [i.last_alert_at for i in incidents],
            [i.resolved_at for i in incidents],
            [i.paged_severity for i in incidents],
            now,
        ]
        members = [
            (m.fingerprint, m.starts_at, i.id) for i in incidents for m in i.members if m.new
        ]
        events = [(i.id, kind, encode_json(detail)) for i in incidents for kind, detail in i.events]
        values += [
            [m[0] for m in members],
            [m[1] for m in members],
            [m[2] for m in members],
            [e[0] for e in events],
            [e[1] for e in events],
            [e[2] for e in events],
            [i.merged_into for i in incidents],
        ]
        links = ",\n".join(
            f"""l{n} AS (UPDATE {t} t SET incident_id = m.i FROM members m
                WHERE t.fingerprint = m.f AND t.starts_at = m.s
                  AND t.incident_id IS DISTINCT FROM m.i)"""  # noqa: S608 - fixed names
            for n, t in enumerate(ALERT_TABLES)
        )
        await self.conn.execute(
            f"""WITH inc AS (
                INSERT INTO incidents AS x (id, title, severity, status, probable_cause,
                    alertnames, organizations, labels, alert_count, opened_at, last_alert_at,
                    resolved_at, paged_severity, updated_at, merged_into)
                SELECT id, ti, sev, st, pc, ARRAY(SELECT jsonb_array_elements_text(an::jsonb)),
                    ARRAY(SELECT jsonb_array_elements_text(og::jsonb)), lb::jsonb, ac, oa, la,
                    ra, ps, $14, mi
                FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::text[], $9::int[], $10::timestamptz[],
                            $11::timestamptz[], $12::timestamptz[], $13::text[], $21::bigint[])
                    AS u(id, ti, sev, st, pc, an, og, lb, ac, oa, la, ra, ps, mi)
                ON CONFLICT (id) DO UPDATE SET
                    title = excluded.title, severity = excluded.severity,
                    status = CASE WHEN excluded.status = 'resolved' THEN 'resolved'
                                  ELSE x.status END,
                    probable_cause = excluded.probable_cause, alertnames = excluded.alertnames,
                    organizations = excluded.organizations, labels = excluded.labels,
                    alert_count = excluded.alert_count, last_alert_at = excluded.last_alert_at,
                    resolved_at = excluded.resolved_at, paged_severity = excluded.paged_severity,
                    updated_at = excluded.updated_at,
                    opened_at = LEAST(x.opened_at, excluded.opened_at),
                    merged_into = COALESCE(excluded.merged_into, x.merged_into)
                RETURNING id),
            members AS (
                SELECT * FROM unnest($15::text[], $16::timestamptz[], $17::bigint[]) AS u(f, s, i)
                WHERE EXISTS (SELECT 1 FROM inc)),
            {links},
            ev AS (
                INSERT INTO incident_events (incident_id, at, kind, detail)
                SELECT i, $14, k, d::jsonb
                FROM unnest($18::bigint[], $19::text[], $20::text[]) AS u(i, k, d)
                WHERE EXISTS (SELECT 1 FROM inc))
            SELECT 1""",  # noqa: S608 - only fixed table names are interpolated
            *values,
        )
        for incident in incidents:
            incident.events.clear()
            incident.new = False
            for member in incident.members:
                member.new = False

    async def incident_rows(self, *, open_only: bool = False) -> list[IncidentRow]:
        rows = await self.conn.fetch(
            "SELECT id, title, severity, status, probable_cause, alertnames, organizations,"
            " alert_count, opened_at, last_alert_at, acknowledged_at, resolved_at,"
            " paged_severity, labels::text, merged_into FROM incidents"
            " WHERE NOT $1 OR status <> 'resolved' ORDER BY id",
            open_only,
        )
        return [
            IncidentRow(*r[:5], list(r[5]), list(r[6]), *r[7:13], decode_json(r[13]) or {}, r[14])
            for r in rows
        ]

    async def surviving_incident(self, incident_id: int) -> int:
        """The incident that carries on for this one: itself, or the one it was merged into
        (following merges of merges); an action on an absorbed incident goes there."""
        survivor = await self.conn.fetchval(SURVIVOR_SQL, incident_id)
        return incident_id if survivor is None else int(survivor)

    async def hand_over_escalations(
        self, merges: Sequence[tuple[int, int]], now: datetime
    ) -> dict[int, tuple[str, Walk]]:
        """The escalations of incidents absorbed by a merge (pairs absorbed, survivor): each
        stops (``done``, nothing due) under its row lock, so the engine never sends another
        step of it; the people they notified count as notified for the survivor (an SMS
        ``ack`` finds it); and for each survivor, the furthest active walk among its absorbed
        ones with its policy, for the survivor to carry on with when it has none of its own
        (``start_escalations`` keeps an existing one). Only the ``escalations`` and
        ``escalation_notifications`` rows are touched: the engine needs nothing else."""
        if not merges:
            return {}
        absorbed = [a for a, _ in merges]
        survivor_of = dict(merges)
        rows = await self.conn.fetch(
            "SELECT incident_id, policy_id, state, step, round, next_at FROM escalations"
            " WHERE incident_id = ANY($1::bigint[]) AND state <> 'done'"
            " ORDER BY incident_id FOR UPDATE",
            absorbed,
        )
        await self.conn.execute(
            "UPDATE escalations SET state = 'done', next_at = NULL, updated_at = $2"
            " WHERE incident_id = ANY($1::bigint[]) AND state <> 'done'",
            absorbed,
            now,
        )
        await self.conn.execute(
            """INSERT INTO escalation_notifications
                   (incident_id, person_id, via, address, step, round, at)
               SELECT m.s, n.person_id, n.via, n.address, n.step, n.round, n.at
               FROM escalation_notifications n
               JOIN unnest($1::bigint[], $2::bigint[]) AS m(a, s) ON n.incident_id = m.a
               ORDER BY n.id""",
            absorbed,
            [s for _, s in merges],
        )
        inherited: dict[int, tuple[str, Walk]] = {}
        for r in rows:
            if r[2] != "active":  # an acknowledgement belongs to the incident acknowledged
                continue
            survivor, walk = survivor_of[r[0]], Walk(r[2], r[3], r[4], r[5])
            held = inherited.get(survivor)
            if held is None or (walk.round, walk.step) > (held[1].round, held[1].step):
                inherited[survivor] = (r[1], walk)
        return inherited
