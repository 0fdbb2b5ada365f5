"""Event-loop lag, for both services: a task that sleeps a fixed interval and records how late it
woke up (each service declares ``passiton_event_loop_lag_seconds`` in its own metrics.py).

A handler that blocks the loop (a slow regex, a huge body parsed synchronously) shows up here as
lag, long before it shows up as timeouts elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import Histogram

INTERVAL_SECONDS = 0.25


async def monitor(histogram: Histogram, interval: float = INTERVAL_SECONDS) -> None:
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        histogram.observe(max(0.0, loop.time() - expected))


def cleanup_context(histogram: Histogram, interval: float = INTERVAL_SECONDS):
    """An aiohttp ``cleanup_ctx`` entry running ``monitor`` for the application's lifetime."""

    async def context(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(monitor(histogram, interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
