"""Local targets for Apprise URLs: an ntfy server (``ntfy://127.0.0.1:PORT/topic``) and a plain
JSON/form webhook receiver (``json://`` and ``form://``), answering as the real ones do."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from tests.fakes._server import FakeServer

# ntfy's error bodies: {"code": <HTTP status * 100 + n>, "http": <status>, "error": "..."}
NTFY_ERRORS = {
    400: (40001, "invalid request"),
    403: (40301, "forbidden"),
    429: (42901, "limit reached: too many requests, please be nice"),
    500: (50001, "internal server error"),
}


class FakeNtfy(FakeServer):
    """ntfy's publish API: ``POST /`` with ``{"topic", "title", "message", ...}`` (what Apprise
    sends) or ``POST /<topic>`` with the message as the body. Accepted messages are in
    ``messages``. ``script_error(429)`` answers the next publish with ntfy's error body."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/", self._publish_json), web.post("/{topic}", self._publish_topic)]

    def script_error(self, status: int, times: int = 1) -> None:
        code, text = NTFY_ERRORS[status]
        body = {"code": code, "http": status, "error": text, "link": "https://ntfy.sh/docs"}
        self.script(status, body, times=times)

    async def _publish_json(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        answer = await self.scripted()
        if answer is not None:
            return answer
        try:
            message = recorded.json()
        except ValueError:
            return _ntfy_error(400)
        if not isinstance(message, dict) or not isinstance(message.get("topic"), str):
            return _ntfy_error(400)
        return self._accept(message)

    async def _publish_topic(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        answer = await self.scripted()
        if answer is not None:
            return answer
        title = request.headers.get("X-Title") or request.headers.get("Title") or ""
        return self._accept(
            {"topic": request.match_info["topic"], "title": title, "message": recorded.text}
        )

    def _accept(self, message: dict[str, Any]) -> web.Response:
        self.messages.append(message)
        event = {
            "id": f"fake{len(self.messages):08d}",
            "time": int(time.time()),
            "event": "message",
            "topic": message["topic"],
            "message": message.get("message", ""),
        }
        return web.json_response(event)


def _ntfy_error(status: int) -> web.Response:
    code, text = NTFY_ERRORS[status]
    return web.json_response({"code": code, "http": status, "error": text}, status=status)


class FakeWebhook(FakeServer):
    """Any ``POST /<path>``: 200 and the JSON (``json://``) or form (``form://``) body kept in
    ``received`` as ``(path, fields)``; scripted answers (500, 429, 404, ...) first."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, dict[str, Any]]] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{path:.*}", self._receive)]

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        answer = await self.scripted()
        if answer is not None:
            return answer
        if recorded.headers.get("content-type", "").startswith("application/json"):
            try:
                fields = json.loads(recorded.body)
            except ValueError:
                return web.Response(status=400, text="invalid JSON")
        else:
            fields = recorded.form()
        self.received.append((request.path, fields))
        return web.Response(status=200, text="ok")
