"""One notification's alert rows and what goes with them: the upsert that deduplicates, the
fatigue state, cooldown holds, the outbox rows and the notification record, written by the
ingest transaction in two statements (one read-and-upsert, one write of everything else)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import decode_json, encode_json
from bridge.model import Alert, category_table
from bridge.storage.outbox import NOTIFY_SQL
from bridge.storage.types import (
    ALERT_TABLES,
    AlertState,
    NewDelivery,
    NewEvents,
    NotificationRecord,
    decode_channels,
    encode_channels,
)


class AlertWrites:
    """The alert operations of a ``Transaction`` (on its connection, ``conn``)."""

    conn: asyncpg.Connection

    async def store_alerts(
        self, alerts: Sequence[Alert], keys: Sequence[str], now: datetime
    ) -> NewEvents:
        """One statement: upsert every alert into its table (a CTE per table), returning the
        rows that were inserted or moved from firing to resolved, joined to their fatigue
        state."""
        p = _Params()
        now_ = p.add(now)
        tables = [category_table(a.category) for a in alerts]
        input_sql = f"""SELECT * FROM unnest(
                {p.add(tables)}::text[],
                {p.add([a.fingerprint for a in alerts])}::text[],
                {p.add([a.starts_at for a in alerts])}::timestamptz[],
                {p.add([a.status for a in alerts])}::text[],
                {p.add([a.alertname for a in alerts])}::text[],
                {p.add([a.severity for a in alerts])}::text[],
                {p.add([a.organization_id for a in alerts])}::text[],
                {p.add([a.summary for a in alerts])}::text[],
                {p.add([a.description for a in alerts])}::text[],
                {p.add([encode_json(a.labels) for a in alerts])}::text[],
                {p.add([encode_json(a.annotations) for a in alerts])}::text[],
                {p.add([a.generator_url for a in alerts])}::text[],
                {p.add([a.ends_at for a in alerts])}::timestamptz[],
                {p.add(list(keys))}::text[]
            ) WITH ORDINALITY AS u(tbl, f, s, st, an, sev, org, su, de, l, a, g, e, k, i)"""  # noqa: S608
        ctes = [f"input AS ({input_sql})"]
        present = sorted(set(tables))
        for n, table in enumerate(present):
            ctes.append(
                f"""t{n} AS (
                INSERT INTO {table} AS t (fingerprint, starts_at, status, alertname, severity,
                    organization_id, summary, description, labels, annotations, generator_url,
                    ends_at, received_at, updated_at)
                SELECT f, s, st, an, sev, org, su, de, l::jsonb, a::jsonb, g, e, {now_}, {now_}
                FROM input WHERE tbl = '{table}'
                ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
                    status = excluded.status, ends_at = excluded.ends_at,
                    annotations = excluded.annotations, summary = excluded.summary,
                    description = excluded.description, updated_at = excluded.updated_at,
                    held_until = NULL
                WHERE t.status = 'firing' AND (excluded.status = 'resolved'
                    OR t.held_until <= excluded.updated_at)
                RETURNING fingerprint, starts_at, status)"""  # noqa: S608 - table from ALERT_TABLES
            )
        changed = " UNION ALL ".join(f"SELECT * FROM t{n}" for n in range(len(present)))  # noqa: S608
        rows = await self.conn.fetch(
            f"""WITH {", ".join(ctes)}, new AS ({changed})
            SELECT input.i, input.k, a.window_started_at, a.cycles, a.flapping, a.last_event_at,
                   a.last_alert::text, a.channels::text
            FROM new
            JOIN input ON input.f = new.fingerprint AND input.s = new.starts_at
                      AND input.st = new.status
            LEFT JOIN alert_fatigue a ON a.alert_key = input.k""",  # noqa: S608
            *p.values,
        )
        states = {
            r[1]: AlertState(r[2], r[3], r[4], r[5], decode_json(r[6]), decode_channels(r[7]))
            for r in rows
            if r[2] is not None
        }
        return NewEvents(sorted(r[0] - 1 for r in rows), states)

    async def save_states(self, rows: dict[str, AlertState]) -> None:
        await self.write_notification(rows, [], None, now=None)

    async def hold_alerts(self, holds: Sequence[tuple[str, str, datetime, datetime]]) -> None:
        await self.write_notification({}, [], None, None, holds)

    async def insert_deliveries(self, rows: Sequence[NewDelivery], now: datetime) -> None:
        await self.write_notification({}, rows, None, now)

    async def insert_notification(self, record: NotificationRecord, now: datetime) -> None:
        await self.write_notification({}, [], record, now)

    async def write_notification(
        self,
        states: dict[str, AlertState],
        deliveries: Sequence[NewDelivery],
        record: NotificationRecord | Sequence[NotificationRecord] | None,
        now: datetime | None,
        holds: Sequence[tuple[str, str, datetime, datetime]] = (),
        skips: Sequence[Any] = (),
    ) -> None:
        """One statement: a data-modifying CTE per table, so one round trip for all of them
        (``record``: one notification's, or those of a batch written together)."""
        p = _Params()
        ctes = []
        for table in sorted({h[0] for h in holds}):
            if table not in ALERT_TABLES:
                raise ValueError(f"not an alert table: {table}")
            rows = [h for h in holds if h[0] == table]
            ctes.append(
                f"""UPDATE {table} t SET held_until = u.h
                FROM unnest({p.add([h[1] for h in rows])}::text[],
                            {p.add([h[2] for h in rows])}::timestamptz[],
                            {p.add([h[3] for h in rows])}::timestamptz[]) AS u(f, s, h)
                WHERE t.fingerprint = u.f AND t.starts_at = u.s"""  # noqa: S608
            )
        if states:
            ctes.append(_state_upsert(states, p))
        if skips:
            ctes.append(_skips_insert(skips, now, p))
        if deliveries:
            ctes.append(
                f"""INSERT INTO alert_deliveries (channel, group_key, message, created_at,
                    next_attempt_at)
                SELECT c, g, m::jsonb, {p.add(now)}, n
                FROM unnest({p.add([r.channel for r in deliveries])}::text[],
                            {p.add([r.group_key for r in deliveries])}::text[],
                            {p.add([r.message.decode() for r in deliveries])}::text[],
                            {p.add([r.next_attempt_at for r in deliveries])}::timestamptz[])
                    AS u(c, g, m, n)"""  # noqa: S608 - only $n placeholders are interpolated
            )
        records = (
            [] if record is None else [record] if isinstance(record, NotificationRecord) else record
        )
        if records:
            ctes.append(
                f"""INSERT INTO alert_notifications (group_key, receiver, status, alert_count,
                    new_event_count, delivery_count, received_at)
                SELECT g, r, st, ac, nc, dc, {p.add(now)}
                FROM unnest({p.add([r.group_key for r in records])}::text[],
                            {p.add([r.receiver for r in records])}::text[],
                            {p.add([r.status for r in records])}::text[],
                            {p.add([r.alert_count for r in records])}::int[],
                            {p.add([r.new_event_count for r in records])}::int[],
                            {p.add([r.delivery_count for r in records])}::int[])
                    AS u(g, r, st, ac, nc, dc)"""  # noqa: S608
            )
        if not ctes:
            return
        if len(ctes) == 1 and not deliveries:
            await self.conn.execute(ctes[0], *p.values)
            return
        # The outbox's NOTIFY rides on the same statement; it is delivered at commit.
        last = f" {NOTIFY_SQL}" if deliveries else " SELECT 1"
        sql = "WITH " + ",\n".join(f"w{i} AS ({c})" for i, c in enumerate(ctes)) + last
        await self.conn.execute(sql, *p.values)

    async def acknowledged(
        self, instances: Sequence[tuple[str, datetime]], now: datetime | None = None
    ) -> set[tuple[str, datetime]]:
        """Those instances acknowledged (an acknowledgement that ended by ``now`` is none)."""
        rows = await self.conn.fetch(
            "SELECT a.fingerprint, a.starts_at FROM alert_acknowledgements a"
            " JOIN unnest($1::text[], $2::timestamptz[]) AS i(f, s)"
            " ON a.fingerprint = i.f AND a.starts_at = i.s"
            " WHERE $3::timestamptz IS NULL OR a.expires_at IS NULL OR a.expires_at > $3",
            [i[0] for i in instances],
            [i[1] for i in instances],
            now,
        )
        return {(r[0], r[1]) for r in rows}

    async def claim_settled_flaps(self, quiet_since: datetime) -> list[tuple[str, AlertState]]:
        rows = await self.conn.fetch(
            """
            UPDATE alert_fatigue SET flapping = FALSE, cycles = 0, window_started_at = $1
            WHERE flapping AND last_event_at < $1
            RETURNING alert_key, window_started_at, cycles, flapping, last_event_at,
                      last_alert::text, channels::text
            """,
            quiet_since,
        )
        return [
            (
                r[0],
                AlertState(r[1], r[2], r[3], r[4], decode_json(r[5]), decode_channels(r[6])),
            )
            for r in rows
        ]


class _Params:
    """Collects statement arguments and hands out their ``$n`` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _skips_insert(skips: Sequence[Any], now: datetime | None, p: _Params) -> str:
    """Why alert events were not sent on channels (``bridge.planning.Skip``; the first reason
    decided for an event and channel stays)."""
    rows = list(
        {(k.fingerprint, k.starts_at, k.status, k.channel): k for k in reversed(skips)}.values()
    )
    return f"""INSERT INTO alert_skips (fingerprint, starts_at, status, channel, reason, until, at)
        SELECT f, s, st, c, r, u, {p.add(now)}::timestamptz
        FROM unnest({p.add([k.fingerprint for k in rows])}::text[],
                    {p.add([k.starts_at for k in rows])}::timestamptz[],
                    {p.add([k.status for k in rows])}::text[],
                    {p.add([k.channel for k in rows])}::text[],
                    {p.add([k.reason for k in rows])}::text[],
                    {p.add([k.until for k in rows])}::timestamptz[]) AS u(f, s, st, c, r, u)
        ON CONFLICT DO NOTHING"""  # noqa: S608 - only $n placeholders are interpolated


def _state_upsert(states: dict[str, AlertState], p: _Params) -> str:
    items = list(states.items())
    last_event = [v.last_event_at or v.window_started_at for _, v in items]
    last_alert = [encode_json(v.last_alert) if v.last_alert else None for _, v in items]
    return f"""INSERT INTO alert_fatigue AS f (alert_key, window_started_at, cycles, flapping,
            last_event_at, last_alert, channels)
        SELECT k, w, c, fl, l, a::jsonb, ch::jsonb
        FROM unnest({p.add([k for k, _ in items])}::text[],
                    {p.add([v.window_started_at for _, v in items])}::timestamptz[],
                    {p.add([v.cycles for _, v in items])}::int[],
                    {p.add([v.flapping for _, v in items])}::bool[],
                    {p.add(last_event)}::timestamptz[],
                    {p.add(last_alert)}::text[],
                    {p.add([encode_channels(v) for _, v in items])}::text[])
            AS u(k, w, c, fl, l, a, ch)
        ON CONFLICT (alert_key) DO UPDATE SET
            window_started_at = excluded.window_started_at, cycles = excluded.cycles,
            flapping = excluded.flapping, last_event_at = excluded.last_event_at,
            last_alert = excluded.last_alert, channels = excluded.channels"""  # noqa: S608
