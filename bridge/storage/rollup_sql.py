"""Upserts into the history tables (``traffic_baselines``, ``endpoint_metrics``,
``widget_analytics``, ``dashboard_metrics``) for the hourly rollup, on both backends.

Each table's primary key ends in ``hour``; writing the same hour again replaces the values of
the rows it writes (``ON CONFLICT ... DO UPDATE``), so a rollup can run any number of times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.codec import encode_json
from bridge.storage.base import Transaction


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


def upsert_sql(table: HistoryTable, dialect: str) -> str:
    columns = [*table.columns, "updated_at"]
    if dialect == "postgres":
        placeholders = [
            f"${i}::jsonb" if c in table.json_columns else f"${i}"
            for i, c in enumerate(columns, start=1)
        ]
    else:
        placeholders = ["?"] * len(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*table.values, "updated_at"))
    return (
        # names come from HISTORY_TABLES, never from input; values are bound parameters
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(placeholders)}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}"
    )


async def upsert_rollup(
    tx: Transaction, table_name: str, rows: Sequence[Mapping[str, Any]], now: datetime
) -> int:
    """Insert or update ``rows`` (dicts with every column but ``updated_at``); their count."""
    table = HISTORY_TABLES[table_name]
    if not rows:
        return 0
    from bridge.storage.postgres import PostgresTransaction

    if isinstance(tx, PostgresTransaction):
        args = [
            [
                *(encode_json(r[c]) if c in table.json_columns else r[c] for c in table.columns),
                now,
            ]
            for r in rows
        ]
        await tx.conn.executemany(upsert_sql(table, "postgres"), args)
        return len(rows)

    from bridge.storage.sqlite import SqliteTransaction, ts

    if isinstance(tx, SqliteTransaction):
        args = [
            [
                *(
                    encode_json(r[c])
                    if c in table.json_columns
                    else ts(r[c])
                    if c == "hour"
                    else r[c]
                    for c in table.columns
                ),
                ts(now),
            ]
            for r in rows
        ]
        await tx.db.executemany(upsert_sql(table, "sqlite"), args)
        return len(rows)
    raise TypeError(f"no history upsert for {type(tx).__name__}")
