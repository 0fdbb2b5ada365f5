"""The scripted aiohttp server every fake third-party service is built on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

T = TypeVar("T")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.text, keep_blank_values=True))


@dataclass(frozen=True)
class ScriptedResponse:
    """A canned answer: sent instead of the fake's normal behaviour, after ``delay`` seconds."""

    status: int = 200
    body: str | bytes | dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def to_response(self) -> web.Response:
        headers = dict(self.headers)
        if isinstance(self.body, dict | list):
            headers.setdefault("Content-Type", "application/json")
            return web.Response(status=self.status, text=json.dumps(self.body), headers=headers)
        if isinstance(self.body, bytes):
            return web.Response(status=self.status, body=self.body, headers=headers)
        return web.Response(status=self.status, text=self.body or "", headers=headers)


class FakeServer:
    """An aiohttp server on 127.0.0.1 with a free port, recording requests.

    Subclasses add routes whose handlers call ``self.record`` then ``self.scripted()``; when a
    scripted response is queued it is answered instead of the normal protocol behaviour.
    ``start()`` runs the server in the current event loop; ``start_in_thread()`` runs it in a
    loop of its own (for synchronous harnesses and for tests whose code under test blocks).
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context  # serve https (the fake push service: real ones are)
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._thread_runner: LoopThread | None = None
        self.base_url = ""

    # -- to be provided by subclasses -------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    # -- scripting ---------------------------------------------------------------------------
    def script(
        self,
        status: int = 200,
        body: str | bytes | dict | list | None = None,
        headers: dict[str, str] | None = None,
        *,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue ``times`` identical answers, used by the next requests in order."""
        for _ in range(times):
            self._script.append(ScriptedResponse(status, body, dict(headers or {}), delay))

    def clear(self) -> None:
        self._script.clear()
        self.requests.clear()

    async def record(self, request: web.Request) -> RecordedRequest:
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
        )
        self.requests.append(recorded)
        return recorded

    async def scripted(self) -> web.StreamResponse | None:
        if not self._script:
            return None
        answer = self._script.popleft()
        if answer.delay > 0:
            await self._sleep(answer.delay)
        return answer.to_response()

    async def _sleep(self, seconds: float) -> None:
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> str:
        """Start listening; returns the base URL (``http://127.0.0.1:PORT``)."""
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "https" if self.ssl_context is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self) -> str:
        """Run the server in a daemon thread with its own event loop; returns the base URL."""
        self._thread_runner = LoopThread(type(self).__name__)
        return self._thread_runner.run(self.start, self.stop)

    def stop_thread(self) -> None:
        if self._thread_runner is not None:
            self._thread_runner.stop()
            self._thread_runner = None


class LoopThread:
    """An event loop in a daemon thread, for running a fake beside synchronous code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._stop: Callable[[], Awaitable[None]] | None = None

    def run(self, start: Callable[[], Awaitable[T]], stop: Callable[[], Awaitable[None]]) -> T:
        self._thread = threading.Thread(target=self.loop.run_forever, name=self.name, daemon=True)
        self._thread.start()
        self._stop = stop
        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def stop(self) -> None:
        if self._thread is None or self._stop is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        self._thread = None
