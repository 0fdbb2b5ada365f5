"""The history tables (``traffic_baselines``, ``endpoint_metrics``, ``widget_analytics``,
``dashboard_metrics``) the hourly rollup writes, and the retention purge of every table.

Each table's primary key ends in ``hour``; writing the same hour again replaces the values of
the rows it writes (``ON CONFLICT ... DO UPDATE``), so a rollup can run any number of times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import encode_json
from bridge.storage.types import ALERT_TABLES


@dataclass(frozen=True)
class HistoryTable:
    name: str
    key: tuple[str, ...]  # the primary key, ``hour`` last
    values: tuple[str, ...]
    json_columns: frozenset[str] = frozenset()

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.key, *self.values)


HISTORY_TABLES = {
    t.name: t
    for t in (
        HistoryTable(
            "traffic_baselines",
            ("organization_id", "hour"),
            ("request_count", "human_count", "bot_count", "suspicious_count", "country_counts"),
            frozenset({"country_counts"}),
        ),
        HistoryTable(
            "endpoint_metrics",
            ("route", "method", "hour"),
            ("request_count", "error_count", "p50_seconds", "p95_seconds", "p99_seconds"),
        ),
        HistoryTable(
            "widget_analytics",
            ("organization_id", "widget_id", "hour"),
            (
                "load_count",
                "load_error_count",
                "render_error_count",
                "script_error_count",
                "p95_load_seconds",
            ),
        ),
        HistoryTable(
            "dashboard_metrics", ("metric", "hour"), ("value", "labels"), frozenset({"labels"})
        ),
    )
}


def upsert_sql(table: HistoryTable) -> str:
    columns = [*table.columns, "updated_at"]
    placeholders = [
        f"${i}::jsonb" if c in table.json_columns else f"${i}"
        for i, c in enumerate(columns, start=1)
    ]
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*table.values, "updated_at"))
    return (
        # names come from HISTORY_TABLES, never from input; values are bound parameters
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(placeholders)}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}"
    )


class HistoryWrites:
    """The history operations of a ``Transaction`` (on its connection, ``conn``)."""

    conn: asyncpg.Connection

    async def upsert_history(
        self, table: HistoryTable, rows: Sequence[Mapping[str, Any]], now: datetime
    ) -> int:
        """Insert or update history ``rows`` (every column but ``updated_at``); their count."""
        args = [
            [
                *(encode_json(r[c]) if c in table.json_columns else r[c] for c in table.columns),
                now,
            ]
            for r in rows
        ]
        await self.conn.executemany(upsert_sql(table), args)
        return len(rows)


_PURGE = {
    **{
        t: f"DELETE FROM {t} WHERE received_at < $1 AND updated_at < $1"  # noqa: S608
        for t in ALERT_TABLES
    },
    # after the alert tables; their timelines (incident_events) go with them
    "incidents": "DELETE FROM incidents WHERE status = 'resolved' AND resolved_at < $1",
    "alert_notifications": "DELETE FROM alert_notifications WHERE received_at < $1",
    "alert_deliveries": (
        "DELETE FROM alert_deliveries WHERE state <> 'pending' AND finished_at < $1"
    ),
    "alert_fatigue": "DELETE FROM alert_fatigue WHERE NOT flapping AND last_event_at < $1",
    "alert_acknowledgements": "DELETE FROM alert_acknowledgements WHERE created_at < $1",
    "console_audit": "DELETE FROM console_audit WHERE at < $1",
    "alert_suppression": "DELETE FROM alert_suppression WHERE seen_at < $1",
    "alert_skips": "DELETE FROM alert_skips WHERE at < $1",
    # replays are refused within a signature's few minutes of validity; a day is plenty
    "inbound_requests": "DELETE FROM inbound_requests WHERE at < $1",
    # on-call overrides that ended before the cutoff (the schedule's past, as retention sees it)
    "oncall_overrides": "DELETE FROM oncall_overrides WHERE ends_at < $1",
}


async def purge(conn: asyncpg.Connection, cutoff: datetime) -> dict[str, int]:
    """Delete alert history and finished bookkeeping older than cutoff; counts per table."""
    counts = {}
    async with conn.transaction():
        for table, sql in _PURGE.items():
            status = await conn.execute(sql, cutoff)
            counts[table] = int(status.rsplit(" ", 1)[-1])
    return counts
