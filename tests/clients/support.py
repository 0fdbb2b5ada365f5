"""Helpers of the Python client's tests: a fake exporter speaking ``POST /v1/events`` (answers
scriptable per request) and real HTTP servers, each running in another thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

WAIT = 10.0  # generous upper bound for background work; never a timing assertion


@dataclass
class Recorded:
    headers: dict[str, str]
    events: list[dict[str, Any]]


class ThreadedServer:
    """Serves an aiohttp app on a free port from its own thread and event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app, access_log=None)
        self.url = ""

    async def _start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(WAIT)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()


class FakeExporter:
    """Speaks the exporter's ``POST /v1/events`` contract; answers can be scripted per request."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.answer_rejected: int = 0
        self.gate: threading.Event | None = None  # when given, requests wait until it is set
        self.cond = threading.Condition()
        app = web.Application()
        app.router.add_post("/v1/events", self._handle)
        self.server = ThreadedServer(app)

    @property
    def url(self) -> str:
        return self.server.url

    async def _handle(self, request: web.Request) -> web.Response:
        events = json.loads(await request.read())
        with self.cond:
            self.requests.append(Recorded(dict(request.headers), events))
            self.cond.notify_all()
        if self.gate is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        status, headers = self.script.popleft() if self.script else (202, {})
        if status == 202:
            rejected = min(self.answer_rejected, len(events))
            errors = [{"index": i, "error": "test rejection"} for i in range(rejected)]
            answer = {"accepted": len(events) - rejected, "rejected": rejected, "errors": errors}
            return web.json_response(answer, status=202)
        return web.json_response({"error": f"scripted {status}"}, status=status, headers=headers)

    def start(self) -> None:
        self.server.__enter__()

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.__exit__()

    def wait_for_requests(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= count, WAIT), self.requests

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.cond:
            return [event for recorded in self.requests for event in recorded.events]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def without_timestamp(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in event.items() if k != "timestamp"} for event in events]
