"""The bridge's own small state (``bridge_state``): keys such as the Watchdog's last arrival,
the console's key, the rollup's marker, the routing configuration's version."""

from __future__ import annotations

from datetime import datetime

import asyncpg


class StateOps:
    """The ``bridge_state`` operations of a ``Transaction`` (on its connection, ``conn``)."""

    conn: asyncpg.Connection

    async def get_state(self, key: str) -> str | None:
        return await self.conn.fetchval("SELECT value FROM bridge_state WHERE key = $1", key)

    async def set_state(self, key: str, value: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO bridge_state (key, value, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            key,
            value,
            now,
        )

    async def init_state(self, key: str, value: str, now: datetime) -> None:
        """Set the key only when it does not exist yet."""
        await self.conn.execute(
            "INSERT INTO bridge_state (key, value, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (key) DO NOTHING",
            key,
            value,
            now,
        )

    async def compare_and_set_state(
        self, key: str, expected: str, value: str, now: datetime
    ) -> bool:
        """Atomically change key from expected to value; True for exactly one caller."""
        status = await self.conn.execute(
            "UPDATE bridge_state SET value = $3, updated_at = $4 WHERE key = $1 AND value = $2",
            key,
            expected,
            value,
            now,
        )
        return status == "UPDATE 1"
