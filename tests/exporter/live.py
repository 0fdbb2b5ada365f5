"""A real exporter on free ports in a background thread, for tests that need a live server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

from exporter.app import create_app
from exporter.config import ExporterConfig
from exporter.server import start_listeners


@dataclass(frozen=True)
class LiveExporter:
    internal: str  # /v1/events, /metrics
    public: str  # beacon, Stripe webhook
    app: web.Application


@contextmanager
def live_exporter(config: ExporterConfig) -> Iterator[LiveExporter]:
    app = create_app(config)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def start() -> None:
        runners = await start_listeners(app, config, ("127.0.0.1", 0), ("127.0.0.1", 0))
        state["runners"] = runners
        state["ports"] = [r.addresses[0][1] for r in runners]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        for runner in reversed(state["runners"]):
            loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "exporter did not start"
    internal, public = state["ports"]
    try:
        yield LiveExporter(f"http://127.0.0.1:{internal}", f"http://127.0.0.1:{public}", app)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@contextmanager
def running_exporter(config: ExporterConfig) -> Iterator[tuple[str, web.Application]]:
    """The internal listener's URL and the app."""
    with live_exporter(config) as live:
        yield live.internal, live.app
