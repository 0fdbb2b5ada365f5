"""A fake Slack: an incoming webhook and the Web API's ``chat.postMessage`` (with message
metadata), ``chat.update`` and ``conversations.history``, validating messages the way Slack does
and answering like it."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes._server import FakeServer

WEBHOOK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
BOT_TOKEN = "xoxb-1111-2222-passitontestbottoken"
CHANNEL_ID = "C0ALERTS1"
CHANNEL_NAME = "alerts"

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT = 40000  # chat.postMessage truncates at 40,000; longer is msg_too_long here
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ELEMENTS = 25


@dataclass
class PostedMessage:
    """A message in the fake's channel: its latest payload, its thread and its edits."""

    channel: str
    ts: str
    payload: dict[str, Any]
    thread_ts: str | None = None
    replies: list[PostedMessage] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # chat.postMessage's ``metadata``


class FakeSlack(FakeServer):
    """POST ``webhook_url`` with a JSON message: 200 ``ok``; Slack's errors otherwise.

    The Web API (``api_url``, methods ``chat.postMessage``, ``chat.update`` and
    ``conversations.history``) wants ``Authorization: Bearer BOT_TOKEN`` (or a ``token`` form
    field), a JSON or form body, and a channel it knows (``CHANNEL_ID``, or ``#alerts`` — except
    ``conversations.history``, which like Slack's takes only the id); it answers HTTP 200 with
    ``ok`` false and Slack's error code otherwise (``not_authed``, ``invalid_auth``,
    ``channel_not_found``, ``not_in_channel`` for a channel in ``not_in_channel``,
    ``msg_too_long``, ``invalid_blocks``, ``invalid_metadata_format``, ``message_not_found``,
    ``missing_scope`` for history when ``history_scope`` is off). A message's ``metadata``
    (``event_type``, ``event_payload``) is kept and returned by ``conversations.history`` with
    ``include_all_metadata`` (newest first, ``oldest``/``latest``/``inclusive``, ``limit`` and a
    ``cursor``). Accepted messages: ``posts`` in order; the channel's top-level ones
    ``parents()``, each with its ``replies`` and ``edits``. ``drop_answers = n``: the next n
    ``chat.postMessage`` calls are carried out, then the connection is dropped without an answer
    (an answer lost on the way back).

    Accepted webhook messages are in ``messages``; every request in ``requests``. Queue
    ``script(...)`` answers such as ``script(429, "rate_limited", {"Retry-After": "3"})`` or
    ``script(404, "no_service")``; for the Web API ``script_api_error("internal_error")``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.posts: list[PostedMessage] = []
        self.not_in_channel: set[str] = set()
        # set: every Web API call waits for it after being recorded (a slow Slack, for races)
        self.hold: asyncio.Event | None = None
        self.drop_answers = 0
        self.history_scope = True  # False: the token lacks channels:history
        self._by_ts: dict[tuple[str, str], PostedMessage] = {}
        self._clock = 1_700_000_000

    @property
    def webhook_url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    @property
    def api_url(self) -> str:
        return self.base_url + "/api"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/services/{team}/{bot}/{secret}", self._webhook),
            web.post("/api/{method}", self._api),
        ]

    def script_api_error(
        self, error: str, *, status: int = 200, retry_after: int | None = None, times: int = 1
    ) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.script(status, {"ok": False, "error": error}, headers, times=times)

    def parents(self) -> list[PostedMessage]:
        return [p for p in self.posts if p.thread_ts is None]

    def message(self, channel: str, ts: str) -> PostedMessage:
        return self._by_ts[(channel, ts)]

    # -- the Web API ---------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if self.hold is not None:
            await self.hold.wait()
        answer = await self.scripted()
        if answer is not None:
            return answer
        method = request.match_info["method"]
        if method not in ("chat.postMessage", "chat.update", "conversations.history"):
            return _api_error("unknown_method", status=404)
        try:
            args = _arguments(recorded.headers.get("content-type", ""), recorded.body)
        except ValueError:
            return _api_error("invalid_arguments")
        auth = recorded.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        if not token:
            return _api_error("not_authed")
        if token != BOT_TOKEN:
            return _api_error("invalid_auth")
        channel = args.get("channel")
        if method == "conversations.history":
            return self._history(channel, args)
        if channel in (CHANNEL_NAME, f"#{CHANNEL_NAME}"):
            channel = CHANNEL_ID
        if channel != CHANNEL_ID:
            return _api_error("channel_not_found")
        if channel in self.not_in_channel:
            return _api_error("not_in_channel")
        text = args.get("text")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            return _api_error("msg_too_long")
        problem = validate_message({k: v for k, v in args.items() if k in ("text", "blocks")})
        if problem:
            return _api_error(problem)
        payload = {k: args[k] for k in ("text", "blocks") if k in args}
        if method == "chat.update":
            target = self._by_ts.get((channel, str(args.get("ts"))))
            if target is None:
                return _api_error("message_not_found")
            target.edits.append(payload)
            target.payload = payload
            return _api_ok({"channel": channel, "ts": target.ts, "text": text or ""})
        metadata = args.get("metadata")
        if isinstance(metadata, str):  # a form body carries it as JSON text
            try:
                metadata = json.loads(metadata)
            except ValueError:
                return _api_error("invalid_metadata_format")
        if metadata is not None and not _metadata_ok(metadata):
            return _api_error("invalid_metadata_format")
        thread_ts = args.get("thread_ts") or None
        self._clock += 1
        posted = PostedMessage(
            channel, f"{self._clock}.000100", payload, thread_ts, metadata=metadata
        )
        if thread_ts is not None:
            parent = self._by_ts.get((channel, str(thread_ts)))
            if parent is None or parent.thread_ts is not None:
                return _api_error("thread_not_found")  # strict: a reply needs its parent
            parent.replies.append(posted)
        self.posts.append(posted)
        self._by_ts[(channel, posted.ts)] = posted
        if self.drop_answers > 0:  # done, but the answer never gets back
            self.drop_answers -= 1
            assert request.transport is not None
            request.transport.abort()  # what is written next goes nowhere
            return web.Response(status=200)
        return _api_ok({"channel": channel, "ts": posted.ts, "message": payload})

    def _history(self, channel: Any, args: dict[str, Any]) -> web.Response:
        if channel != CHANNEL_ID:  # an id only, never a #name
            return _api_error("channel_not_found")
        if not self.history_scope:
            return _api_error("missing_scope")
        try:
            oldest = float(args.get("oldest") or 0)
            latest = float(args.get("latest") or 1e12)
            limit = min(int(args.get("limit") or 100), 999)
            start = int(args.get("cursor") or 0)
        except ValueError:
            return _api_error("invalid_arguments")
        inclusive = _true(args.get("inclusive"))
        found = [
            p
            for p in reversed(self.posts)
            if p.channel == channel
            and p.thread_ts is None
            and (oldest <= float(p.ts) if inclusive else oldest < float(p.ts))
            and (float(p.ts) <= latest if inclusive else float(p.ts) < latest)
        ]
        page = found[start : start + limit]
        with_metadata = _true(args.get("include_all_metadata"))
        messages = []
        for p in page:
            message = {"type": "message", "ts": p.ts, **p.payload}
            if with_metadata and p.metadata is not None:
                message["metadata"] = p.metadata
            messages.append(message)
        more = start + limit < len(found)
        return _api_ok(
            {
                "messages": messages,
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
        )

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


def _true(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _metadata_ok(metadata: Any) -> bool:
    """Slack's message metadata: an ``event_type`` and an object ``event_payload``."""
    return (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and 0 < len(metadata["event_type"]) <= 255
        and isinstance(metadata.get("event_payload"), dict)
    )


def _error(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html")


def _api_ok(data: dict[str, Any]) -> web.Response:
    return web.json_response({"ok": True, **data})


def _api_error(error: str, *, status: int = 200) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)


def _arguments(content_type: str, body: bytes) -> dict[str, Any]:
    """A Web API call's arguments from a JSON or form body (form ``blocks`` are JSON text)."""
    if content_type.startswith("application/json"):
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    args: dict[str, Any] = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    if "blocks" in args:
        args["blocks"] = json.loads(args["blocks"])
    return args


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
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    if len(ids) != len(set(ids)):
        return "invalid_blocks"  # block_id must be unique within a message
    return None


def _text_ok(obj: Any, limit: int, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in kinds
        and isinstance(obj.get("text"), str)
        and 0 < len(obj["text"]) <= limit
    )


def _button_ok(element: Any) -> bool:
    if not isinstance(element, dict) or element.get("type") != "button":
        return False
    confirm = element.get("confirm")
    return (
        _text_ok(element.get("text"), MAX_BUTTON_TEXT, ("plain_text",))
        and isinstance(element.get("action_id"), str)
        and 0 < len(element["action_id"]) <= 255
        and len(str(element.get("value", ""))) <= MAX_BUTTON_VALUE
        and element.get("style", "primary") in ("primary", "danger")
        and (
            confirm is None
            or (
                isinstance(confirm, dict)
                and _text_ok(confirm.get("title"), 100, ("plain_text",))
                and _text_ok(confirm.get("confirm"), 30, ("plain_text",))
                and _text_ok(confirm.get("text"), 300)
                and _text_ok(confirm.get("deny"), 30, ("plain_text",))
            )
        )
    )


def _block_ok(block: dict[str, Any]) -> bool:
    block_id = block.get("block_id")
    if block_id is not None and not (isinstance(block_id, str) and 0 < len(block_id) <= 255):
        return False
    kind = block.get("type")
    if kind == "actions":
        elements = block.get("elements")
        return (
            isinstance(elements, list)
            and 0 < len(elements) <= MAX_ACTION_ELEMENTS
            and all(_button_ok(e) for e in elements)
        )
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


class TimedSlack(FakeSlack):
    """The fake Slack, noting when each message arrived (wall clock, as Prometheus does): the
    end-to-end benchmarks' stopwatch."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str]] = []

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        response = await super()._webhook(request)
        self.arrivals.append((arrived, json.dumps(self.messages[-1]) if self.messages else ""))
        return response
