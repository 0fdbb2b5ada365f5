"""``POST /v1/slack/interactions``: Slack's button presses on an incident's message.

Public, so everything is checked before anything is believed: the body's size, then
``X-Slack-Signature`` (``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{raw body}`` with
``SLACK_SIGNING_SECRET``, compared in constant time) and ``X-Slack-Request-Timestamp`` (within
five minutes of the clock, either way), then that the signature was not used before: it is
recorded in ``inbound_requests`` (source ``slack``, like Twilio's, PagerDuty's and the e-mail
links' ids), so a replay is refused by whichever replica it reaches, and after a restart. Only
then is the ``payload`` form field read: a ``block_actions`` press of
``incident_acknowledge``/``incident_resolve``/``incident_silence`` whose value is the incident id,
by a Slack user the on-call configuration knows (``people``: Slack user id → person id).

Answers: 401 bad or missing signature or stale timestamp; 409 replay; 413 too large; 400
malformed; 403 unknown Slack user (who gets an ephemeral "not on the on-call list" through the
press's ``response_url``, and only when that is Slack's); 404 unknown incident; 503 when the
database or the action failed (the signature is forgotten again, so a retry can act); 200 when
done — nothing changes on any answer but 200. After answering (Slack
wants its answer within 3 s) the incident's message is updated in place (``chat.update``) so its
state line and buttons show the new state.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs

from aiohttp import web

from bridge.channels.slack_incident import (
    ACTION_IDS,
    HEADER_BLOCK,
    with_state,
)
from bridge.channels.slack_webapi import SlackApiError, SlackWebApi, is_slack_url
from bridge.channels.text import escape_mrkdwn, one_line, truncate
from bridge.model import slack_user_ids
from bridge.oncall.actions import Action, ActionResult, IncidentActions, UnknownIncident
from bridge.storage import StorageUnavailable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ACTIONS_BY_ID: dict[str, Action] = {action_id: a for a, action_id in ACTION_IDS.items()}
NOT_ON_CALL = "You are not on the on-call list, so this button does nothing for you."
_MAX_INCIDENT_DIGITS = 18
SOURCE = "slack"  # inbound_requests.source


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v0=`` and the hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret."""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SlackInteractionsConfig:
    signing_secret: str = field(repr=False)
    tolerance_seconds: float = 300.0
    # A press carries the whole message (up to 50 blocks); far more than that is not Slack.
    max_body_bytes: int = 512 * 1024
    # How long Silence silences (None: the on-call engine's default).
    silence_for: timedelta | None = None
    # Whose response_url gets the ephemeral "not on the on-call list": Slack's only.
    response_url_allowed: Callable[[str], bool] = is_slack_url

    def __post_init__(self) -> None:
        if not self.signing_secret:
            raise ValueError("the Slack signing secret must not be empty")


class Replays(Protocol):
    """Where verified requests are recorded (``bridge.public.context.InboundRequests``: the
    database's ``inbound_requests``, shared by every replica)."""

    async def first_seen(self, source: str, request_id: str) -> bool:
        """Record the request; False when it was recorded before (a replay)."""
        ...

    async def forget(self, source: str, request_id: str) -> None:
        """Undo ``first_seen`` for a request that could not be carried out."""
        ...


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class _Press:
    action: Action
    incident_id: int
    user_id: str
    response_url: str
    channel: str | None
    ts: str | None
    blocks: list[dict[str, Any]] | None


class SlackInteractions:
    """The endpoint: ``handle`` is the aiohttp handler; ``drain()`` awaits the message updates
    and ephemeral answers it started after answering (call it on shutdown)."""

    def __init__(
        self,
        config: SlackInteractionsConfig,
        actions: IncidentActions,
        people: Mapping[str, str],
        clock: Callable[[], datetime],
        web_api: SlackWebApi | None,
        replays: Replays,
    ) -> None:
        self.config = config
        self.actions = actions
        self.people = people
        self.clock = clock
        self.web_api = web_api
        self.replays = replays
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._body(request)
            signature = self._verify(request, body)
            if not await self.replays.first_seen(SOURCE, signature):
                raise _Refused(409, "replayed")
            press = _parse(body)
        except _Refused as refused:
            log.info(
                "slack interaction refused",
                extra={"status": refused.status, "reason": refused.reason},
            )
            return web.Response(status=refused.status, text=refused.reason + "\n")
        except StorageUnavailable:
            return web.Response(status=503, text="try again\n")
        person = self.people.get(press.user_id)
        if person is None:
            log.warning(
                "slack press by a user not on the on-call list", extra={"slack_user": press.user_id}
            )
            if self.web_api is not None and self.config.response_url_allowed(press.response_url):
                self._later(self._tell_not_on_call(self.web_api, press.response_url))
            return web.Response(status=403, text="not on the on-call list\n")
        try:
            result = await self.actions.act(
                press.incident_id,
                press.action,
                person_id=person,
                via="slack",
                silence_for=self.config.silence_for if press.action == "silence" else None,
            )
        except UnknownIncident:
            return web.Response(status=404, text="unknown incident\n")
        except Exception:
            log.exception(
                "slack press could not be applied", extra={"incident_id": press.incident_id}
            )
            await self.replays.forget(SOURCE, signature)
            return web.Response(status=503, text="try again\n")
        log.info(
            "slack press applied",
            extra={
                "incident_id": result.incident_id,
                "action": result.action,
                "changed": result.changed,
                "person": person,
            },
        )
        if self.web_api is not None and press.channel and press.ts and press.blocks is not None:
            target = (press.channel, press.ts, press.blocks)
            self._later(self._update_message(self.web_api, target, press.user_id, result))
        return web.Response(status=200)

    async def _body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _Refused(413, "too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise _Refused(413, "too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _verify(self, request: web.Request, body: bytes) -> str:
        """The request's signature, once checked (with its timestamp)."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            raise _Refused(401, "missing signature")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise _Refused(401, "bad timestamp")
        now = self.clock().timestamp()
        sent = int(timestamp)
        if abs(now - sent) > self.config.tolerance_seconds:
            raise _Refused(401, "stale timestamp")
        expected = slack_signature(self.config.signing_secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise _Refused(401, "bad signature")
        return signature

    def _later(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the message updates and ephemeral answers started so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _tell_not_on_call(self, api: SlackWebApi, response_url: str) -> None:
        await api.respond(
            response_url,
            {"response_type": "ephemeral", "replace_original": False, "text": NOT_ON_CALL},
        )

    async def _update_message(
        self,
        api: SlackWebApi,
        target: tuple[str, str, list[dict[str, Any]]],
        user_id: str,
        result: ActionResult,
    ) -> None:
        channel, ts, current = target
        blocks = with_state(current, result.incident_id, result.status, by=user_id or None)
        heading = next(
            (
                b["text"].get("text", "")
                for b in blocks
                if b.get("block_id") == HEADER_BLOCK and isinstance(b.get("text"), dict)
            ),
            f"Incident #{result.incident_id}: {result.title}",
        )
        text = escape_mrkdwn(truncate(one_line(f"[{result.status.upper()}] {heading}"), 300))
        try:
            await api.update_message(channel, ts, text, blocks)
        except SlackApiError as exc:
            log.warning(
                "could not update the incident's Slack message after a press",
                extra={"incident_id": result.incident_id, "error": exc.error},
            )


def _parse(body: bytes) -> _Press:
    """The press in a verified body; _Refused(400) for anything else."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=50)
        [raw] = form["payload"]
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError, KeyError):
        raise _Refused(400, "no payload") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise _Refused(400, "not a block_actions payload")
    actions, user = payload.get("actions"), payload.get("user")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise _Refused(400, "no action")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        raise _Refused(400, "no user")
    action = ACTIONS_BY_ID.get(str(actions[0].get("action_id")))
    if action is None:
        raise _Refused(400, "unknown action")
    value = actions[0].get("value")
    if (
        not isinstance(value, str)
        or not value.isascii()
        or not value.isdigit()
        or len(value) > _MAX_INCIDENT_DIGITS
        or int(value) <= 0
    ):
        raise _Refused(400, "the value is not an incident id")
    [user_id] = slack_user_ids([user["id"]]) or [""]
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    channel_field = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    channel = container.get("channel_id") or channel_field.get("id")
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    blocks = message.get("blocks")
    response_url = payload.get("response_url")
    return _Press(
        action=action,
        incident_id=int(value),
        user_id=user_id,
        response_url=response_url if isinstance(response_url, str) else "",
        channel=channel if isinstance(channel, str) and channel else None,
        ts=_str(container.get("message_ts")) or _str(message.get("ts")),
        blocks=blocks if isinstance(blocks, list) else None,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def slack_interactions(
    config: SlackInteractionsConfig,
    actions: IncidentActions,
    people: Mapping[str, str],
    clock: Callable[[], datetime],
    web_api: SlackWebApi | None,
    replays: Replays,
) -> Handler:
    """The ``POST /v1/slack/interactions`` handler: ``SlackInteractions(...).handle`` (its
    ``__self__.drain()`` waits for the updates still running, for a clean shutdown)."""
    return SlackInteractions(config, actions, people, clock, web_api, replays).handle
