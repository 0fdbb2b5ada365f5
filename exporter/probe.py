"""Periodic ``SELECT 1`` against PROBE_DATABASE_URL, exposed as up/latency gauges."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from exporter.metrics import ExporterMetrics

log = logging.getLogger("exporter.probe")


class DatabaseProbe:
    def __init__(self, dsn: str, interval: float, metrics: ExporterMetrics, timeout: float = 5.0):
        self._dsn = dsn
        self._interval = interval
        self._timeout = timeout
        self._metrics = metrics
        self._conn: asyncpg.Connection | None = None

    async def probe_once(self) -> bool:
        started = time.perf_counter()
        try:
            if self._conn is None or self._conn.is_closed():
                # statement_cache_size=0: safe through Supabase's transaction pooler.
                self._conn = await asyncpg.connect(
                    self._dsn, timeout=self._timeout, statement_cache_size=0
                )
            await self._conn.fetchval("SELECT 1", timeout=self._timeout)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            self._metrics.database_probe_up.set(0)
            self._metrics.database_probe_duration.set(time.perf_counter() - started)
            log.warning("database probe failed", extra={"error": type(exc).__name__})
            await self._close()
            return False
        self._metrics.database_probe_up.set(1)
        self._metrics.database_probe_duration.set(time.perf_counter() - started)
        return True

    async def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=1)
            self._conn = None

    async def _loop(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self._interval)

    async def context(self, _: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._close()
