"""Per-organization routing as the console and Supabase edit it: ``notification_preferences``,
``alert_configurations``, and the version a trigger bumps on every change of either."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import asyncpg

from bridge.codec import decode_json
from bridge.storage.types import ConfigurationRow, PreferenceRow


class RoutingQueries:
    """The routing reads of ``Storage`` (each on a pooled connection of its own)."""

    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def load_routing(self) -> tuple[list[PreferenceRow], list[ConfigurationRow]]:
        async with self._conn() as conn:
            prefs = await conn.fetch(
                "SELECT organization_id, channels::text, recipients::text, min_severity,"
                " quiet_hours_start, quiet_hours_end, timezone FROM notification_preferences"
            )
            configs = await conn.fetch(
                "SELECT organization_id, alertname, threshold, enabled FROM alert_configurations"
            )
        return (
            [
                PreferenceRow(
                    r[0], decode_json(r[1]), decode_json(r[2]) or {}, r[3], r[4], r[5], r[6]
                )
                for r in prefs
            ],
            [ConfigurationRow(r[0], r[1], r[2], r[3]) for r in configs],
        )

    async def config_version(self) -> str:
        async with self._conn() as conn:
            return await conn.fetchval(
                "SELECT value FROM bridge_state WHERE key = 'config_version'"
            )
