"""The versioned SQL migrations (``bridge/migrations/*.sql``), applied in order, once each.

Plain SQL files, usable as Supabase migrations. ``migrate`` runs in one transaction under a
transaction-scoped advisory lock (pooler-safe), so concurrent migrators apply each file once.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import asyncpg

_MIGRATE_LOCK = 0x7061_7373_6974  # "passit"


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def load_migrations() -> list[Migration]:
    """The packaged migrations, in version order."""
    folder = resources.files("bridge") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [Migration(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


async def applied(conn: asyncpg.Connection) -> list[str]:
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return []
    return [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")]


async def apply(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not applied yet; their versions."""
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version TEXT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            ALTER TABLE schema_migrations ENABLE ROW LEVEL SECURITY;
            """
        )
        done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in load_migrations():
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
            )
            applied_now.append(migration.version)
    return applied_now
