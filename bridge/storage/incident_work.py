"""The work on an incident beyond acknowledging and resolving it, in a ``Transaction``: when an
acknowledgement ends, snoozes, the assignee, the alerts' acknowledgements, and the sweep that
claims incidents whose acknowledgement or snooze ran out (``FOR UPDATE SKIP LOCKED``, so each
runs out once whichever replica sweeps). The callers hold the incident's row lock
(``incident_for_update``) for everything but the sweep, which takes it itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from bridge.storage.types import ALERT_TABLES

# (fingerprint, starts_at) of an incident's firing alerts: $1 the incident
_FIRING = " UNION ALL ".join(
    f"SELECT fingerprint, starts_at FROM {t}"  # noqa: S608 - fixed names
    " WHERE incident_id = $1 AND status = 'firing'"
    for t in ALERT_TABLES
)


# the fingerprints of all its alerts
_ALL = " UNION ALL ".join(
    f"SELECT fingerprint FROM {t} WHERE incident_id = $1"  # noqa: S608 - fixed names
    for t in ALERT_TABLES
)


@dataclass(frozen=True)
class IncidentWork:
    """An incident's timers and assignee (the columns of migration 0013)."""

    ack_expires_at: datetime | None
    snoozed_until: datetime | None
    snoozed_by: str | None
    assignee: str | None


@dataclass(frozen=True)
class RunOut:
    """An incident whose chosen acknowledgement end or snooze end has come (locked)."""

    id: int
    status: str
    title: str
    ack_expires_at: datetime | None
    snoozed_until: datetime | None
    snoozed_by: str | None


class IncidentWorkWrites:
    """The operations of a ``Transaction`` (on its connection, ``conn``)."""

    conn: asyncpg.Connection

    async def incident_work(self, incident_id: int) -> IncidentWork:
        row = await self.conn.fetchrow(
            "SELECT ack_expires_at, snoozed_until, snoozed_by, assignee FROM incidents"
            " WHERE id = $1",
            incident_id,
        )
        return IncidentWork(*row) if row else IncidentWork(None, None, None, None)

    async def set_ack_expiry(
        self, incident_id: int, until: datetime | None, *, alerts: bool = True
    ) -> None:
        """The incident's acknowledgement ends then (None: no chosen end), and so do the
        acknowledgements of its firing alerts (unless not ``alerts``: an expiry that ran out
        leaves theirs ended)."""
        await self.conn.execute(
            "UPDATE incidents SET ack_expires_at = $2 WHERE id = $1", incident_id, until
        )
        if not alerts:
            return
        await self.conn.execute(
            f"""UPDATE alert_acknowledgements a SET expires_at = $2
                FROM ({_FIRING}) f
                WHERE a.fingerprint = f.fingerprint AND a.starts_at = f.starts_at""",  # noqa: S608
            incident_id,
            until,
        )

    async def drop_alert_acknowledgements(self, incident_id: int) -> int:
        """Forget the acknowledgements of the incident's firing alerts (it was
        unacknowledged): their repeats notify again. How many there were."""
        status = await self.conn.execute(
            f"""DELETE FROM alert_acknowledgements a USING ({_FIRING}) f
                WHERE a.fingerprint = f.fingerprint AND a.starts_at = f.starts_at""",  # noqa: S608
            incident_id,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def paged_on(self, incident_id: int, channel: str) -> bool:
        """Whether a delivery on ``channel`` carried one of the incident's alerts."""
        return bool(
            await self.conn.fetchval(
                f"""SELECT EXISTS (SELECT 1 FROM ({_ALL}) a
                    JOIN delivery_alerts l ON l.fingerprint = a.fingerprint
                    JOIN alert_deliveries d ON d.id = l.delivery_id AND d.channel = $2)""",  # noqa: S608
                incident_id,
                channel,
            )
        )

    async def set_snooze(self, incident_id: int, until: datetime | None, by: str | None) -> None:
        await self.conn.execute(
            "UPDATE incidents SET snoozed_until = $2, snoozed_by = $3 WHERE id = $1",
            incident_id,
            until,
            by,
        )

    async def set_assignee(self, incident_id: int, assignee: str | None) -> None:
        await self.conn.execute(
            "UPDATE incidents SET assignee = $2 WHERE id = $1", incident_id, assignee
        )

    async def last_note(self, incident_id: int) -> tuple[str, str] | None:
        """(by, text) of the incident's newest note."""
        row = await self.conn.fetchrow(
            "SELECT detail->>'by', detail->>'text' FROM incident_events"
            " WHERE incident_id = $1 AND kind = 'note' ORDER BY at DESC, id DESC LIMIT 1",
            incident_id,
        )
        return (row[0] or "", row[1] or "") if row else None

    async def claim_run_out(self, now: datetime, limit: int) -> list[RunOut]:
        """Incidents whose chosen acknowledgement end or snooze end is due, locked until
        commit; those another replica holds are skipped (and are done by it)."""
        rows = await self.conn.fetch(
            """SELECT id, status, title, ack_expires_at, snoozed_until, snoozed_by
               FROM incidents
               WHERE ack_expires_at <= $1 OR snoozed_until <= $1
               ORDER BY id LIMIT $2
               FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        return [RunOut(*r) for r in rows]

    async def snoozed_incidents(self, incident_ids: Sequence[int], now: datetime) -> set[int]:
        """Those of these incidents snoozed at ``now``: their pages are held."""
        if not incident_ids:
            return set()
        rows = await self.conn.fetch(
            "SELECT id FROM incidents WHERE id = ANY($1::bigint[]) AND snoozed_until > $2",
            list(incident_ids),
            now,
        )
        return {r[0] for r in rows}
