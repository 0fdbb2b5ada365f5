"""The history tables and their upsert statement (``traffic_baselines``, ``endpoint_metrics``,
``widget_analytics``, ``dashboard_metrics``) for the hourly rollup, on both backends.

Each table's primary key ends in ``hour``; writing the same hour again replaces the values of
the rows it writes (``ON CONFLICT ... DO UPDATE``), so a rollup can run any number of times.
"""

from __future__ import annotations

from dataclasses import dataclass


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
