"""A real exporter on a free port in a background thread, for tests that need a live server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from exporter.app import create_app
from exporter.config import ExporterConfig


@contextmanager
def running_exporter(config: ExporterConfig) -> Iterator[tuple[str, web.Application]]:
    app = create_app(config)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        state["port"] = runner.addresses[0][1]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(state["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "exporter did not start"
    try:
        yield f"http://127.0.0.1:{state['port']}", app
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
