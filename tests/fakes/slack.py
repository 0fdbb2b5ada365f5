"""A fake Slack incoming webhook: validates messages the way Slack does and answers like it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes._server import FakeServer

WEBHOOK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10


class FakeSlack(FakeServer):
    """POST ``webhook_url`` with a JSON message: 200 ``ok``; Slack's errors otherwise.

    Accepted messages are in ``messages``; every request in ``requests``. Queue ``script(...)``
    answers such as ``script(429, "rate_limited", {"Retry-After": "3"})`` or
    ``script(404, "no_service")``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []

    @property
    def webhook_url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/services/{team}/{bot}/{secret}", self._webhook)]

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        answer = await self.scripted()
        if answer is not None:
            return answer
        if request.path != WEBHOOK_PATH:
            return _error(404, "no_service")
        try:
            payload = json.loads(recorded.body)
        except ValueError:
            return _error(400, "invalid_payload")
        if not isinstance(payload, dict):
            return _error(400, "invalid_payload")
        problem = validate_message(payload)
        if problem:
            return _error(400, problem)
        self.messages.append(payload)
        return web.Response(status=200, text="ok", content_type="text/html")


def _error(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html")


def validate_message(payload: dict[str, Any]) -> str | None:
    """Slack's error string for an unacceptable message, or None."""
    text = payload.get("text")
    blocks = payload.get("blocks")
    if blocks is None and not text:
        return "no_text"
    if text is not None and not isinstance(text, str):
        return "invalid_payload"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or not _block_ok(block):
            return "invalid_blocks"
    return None


def _text_ok(obj: Any, limit: int, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in kinds
        and isinstance(obj.get("text"), str)
        and 0 < len(obj["text"]) <= limit
    )


def _block_ok(block: dict[str, Any]) -> bool:
    kind = block.get("type")
    if kind == "header":
        return _text_ok(block.get("text"), MAX_HEADER_TEXT, ("plain_text",))
    if kind == "section":
        if "text" in block and not _text_ok(block["text"], MAX_SECTION_TEXT):
            return False
        fields = block.get("fields", [])
        return ("text" in block or fields) and all(_text_ok(f, 2000) for f in fields)
    if kind == "context":
        elements = block.get("elements")
        return (
            isinstance(elements, list)
            and 0 < len(elements) <= MAX_CONTEXT_ELEMENTS
            and all(_text_ok(e, MAX_SECTION_TEXT) for e in elements)
        )
    return kind == "divider"
