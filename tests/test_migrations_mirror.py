"""The Postgres and SQLite migration folders mirror each other: the same versions, and after
applying them (to a real PostgreSQL database and a real SQLite file) the same tables with the
same columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from bridge.storage import open_storage
from bridge.storage.base import load_migrations

MIGRATIONS = Path(__file__).resolve().parent.parent / "bridge" / "migrations"


def test_both_folders_hold_the_same_versions() -> None:
    postgres = sorted(p.name for p in (MIGRATIONS / "postgres").glob("*.sql"))
    sqlite = sorted(p.name for p in (MIGRATIONS / "sqlite").glob("*.sql"))
    assert postgres, "no Postgres migrations found"
    assert postgres == sqlite
    assert [m.version for m in load_migrations("postgres")] == [
        m.version for m in load_migrations("sqlite")
    ]


async def _postgres_columns(url: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    tables: dict[str, set[str]] = {}
    for row in rows:
        tables.setdefault(row["table_name"], set()).add(row["column_name"])
    return tables


def _sqlite_columns(path: Path) -> dict[str, set[str]]:
    with sqlite3.connect(path) as db:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {name: {r[1] for r in db.execute(f"PRAGMA table_info({name})")} for name in names}


async def test_applied_migrations_give_the_same_tables_and_columns(
    pg_database: str, tmp_path: Path
) -> None:
    path = tmp_path / "mirror.sqlite3"
    async with open_storage(f"sqlite:///{path}") as storage:
        await storage.migrate()
    async with open_storage(pg_database) as storage:
        await storage.migrate()
    postgres = await _postgres_columns(pg_database)
    sqlite = _sqlite_columns(path)
    assert {"alert_fatigue", "alert_deliveries", "payment_alerts"} <= set(postgres)
    assert set(postgres) == set(sqlite), "tables differ"
    for table in postgres:
        assert postgres[table] == sqlite[table], f"columns of {table} differ"
