"""Slack by the Web API: one message per incident, its changes in the thread beneath it.

An incident's first page is ``chat.postMessage`` to the bot's channel: the alerts, the incident's
state and three buttons (Acknowledge, Resolve with a confirmation, Silence; value = the incident
id). Its ``ts`` and channel are stored (``SlackThreads``, ``bridge/storage/slack_messages.py``).
Every later message of the incident updates that parent in place (``chat.update``: state and
severity as the incident has them now, no buttons once resolved) and then goes into its thread.

Exactly one parent per incident, across workers and replicas: the parent is created and updated
only while its row is locked (``SlackThreads.parent``). A worker finding the row locked fails
retryably with a short ``retry_after``; a later message (a resolve) finding no parent yet waits
the same way for the first page, and only after ``parent_wait`` (the first page is dead or was
never routed to Slack) becomes the parent itself. A message that mentions people (the on-call
engine's "you are paged") is a thread reply when the incident has a parent, else a message of its
own, never a parent.

``chat.postMessage`` has no idempotency key, so a parent posted whose answer was lost (a
timeout, a dropped connection, a 5xx) could be posted twice. Every parent carries Slack's message
metadata (``event_type`` ``passiton_incident``, ``event_payload`` ``{"incident_id": N}``); a post
that failed retryably is recorded on the claim (``unanswered``, committed with the claim), and
before posting that parent again the channel's newest messages (``conversations.history`` with
``include_all_metadata``, at most ``HISTORY_PAGES`` pages) are searched for it: found, it is
adopted (and brought up to date in place) instead of posted again. The search needs the channel's
id (``SLACK_CHANNEL`` as ``C0…``, or one learned from an earlier answer) and the scope
``channels:history`` (``groups:history`` for a private channel); without them it is skipped
with a warning and the parent is posted again, as before.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bridge.channels.base import DeliveryError
from bridge.channels.slack import MAX_BLOCKS, render_fallback, render_message
from bridge.channels.slack_webapi import Posted, SlackApiError, SlackWebApi
from bridge.channels.text import escape_mrkdwn, one_line, truncate
from bridge.model import SEVERITY_RANK, Message
from bridge.oncall.actions import Action

log = logging.getLogger(__name__)

PARENT_WAIT = timedelta(minutes=10)
PARENT_EVENT = "passiton_incident"  # the parents' metadata event_type
HISTORY_PAGES = 3  # of 200 messages: how far back an unanswered parent is looked for
BUSY_RETRY_SECONDS = 2.0  # another worker is posting or updating the parent right now
WAIT_RETRY_SECONDS = 5.0  # a later message waiting for the incident's first page

HEADER_BLOCK = "incident_header"
STATUS_BLOCK = "incident_status"
ACTIONS_BLOCK = "incident_actions"
ACTION_IDS: dict[Action, str] = {
    "acknowledge": "incident_acknowledge",
    "resolve": "incident_resolve",
    "silence": "incident_silence",
}
MAX_HEADER_TEXT = 150

_STATUS_TEXT = {
    "firing": ":rotating_light: *Firing*",
    "acknowledged": ":eyes: *Acknowledged*",
    "resolved": ":white_check_mark: *Resolved*",
}


class ParentClaim(Protocol):
    """An incident's Slack parent message, locked by this worker while the claim is held.

    ``status``, ``severity`` and ``title`` are the incident's now (``status`` None: no such
    incident); ``channel``/``ts`` the parent (None: not posted yet); ``body`` the parent's alert
    blocks (kept for updates in place) and ``body_severity`` the severity they were rendered at.
    """

    status: str | None
    severity: str
    title: str
    channel: str | None
    ts: str | None
    body: list[dict[str, Any]] | None
    body_severity: str | None
    waiting_since: datetime | None
    unanswered_since: datetime | None  # a post of the parent went unanswered (then, first)

    async def created(
        self, channel: str, ts: str, body: list[dict[str, Any]], body_severity: str, now: datetime
    ) -> None:
        """Record the parent just posted (and the incident's ``slack_thread_ts``)."""
        ...

    async def updated(self, body: list[dict[str, Any]], body_severity: str, now: datetime) -> None:
        """Record what the parent shows after an update in place."""
        ...

    async def waiting(self, now: datetime) -> None:
        """Note that a later message found no parent (from the first such time on)."""
        ...

    async def unanswered(self, now: datetime) -> None:
        """Note that a post of the parent got no answer: it may be in the channel."""
        ...


class SlackThreads(Protocol):
    """What the Web API mode needs from the store (injected at construction)."""

    def parent(
        self, incident_id: int, now: datetime
    ) -> AbstractAsyncContextManager[ParentClaim | None]:
        """The incident's parent, locked until the block ends (writes commit at its end, an
        exception discards them); None when another worker holds it."""
        ...


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def incident_heading(incident_id: int, severity: str, title: str) -> str:
    text = one_line(f"[{severity.upper()}] Incident #{incident_id}: {title}")
    # plain_text is never parsed for mentions; the angle brackets go anyway, belt and braces.
    return truncate(text.replace("<", "\u2039").replace(">", "\u203a"), MAX_HEADER_TEXT)


def header_block(incident_id: int, severity: str, title: str) -> dict[str, Any]:
    return {
        "type": "header",
        "block_id": HEADER_BLOCK,
        "text": _plain(incident_heading(incident_id, severity, title)),
    }


def status_block(status: str, by: str | None = None) -> dict[str, Any]:
    """The incident's state line; ``by``: the Slack user id who changed it (validated)."""
    text = _STATUS_TEXT.get(status, f"*{escape_mrkdwn(one_line(status))}*")
    if by:
        text += f" by <@{by}>"
    return {"type": "context", "block_id": STATUS_BLOCK, "elements": [_mrkdwn(text)]}


def _button(
    text: str, action: Action, incident_id: int, style: str | None = None
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": ACTION_IDS[action],
        "text": _plain(text),
        "value": str(incident_id),
    }
    if style:
        button["style"] = style
    return button


def actions_block(incident_id: int, status: str) -> dict[str, Any] | None:
    """The buttons the incident's state allows: none once resolved."""
    if status == "resolved":
        return None
    buttons = []
    if status != "acknowledged":
        buttons.append(_button("Acknowledge", "acknowledge", incident_id, "primary"))
    resolve = _button("Resolve", "resolve", incident_id, "danger")
    resolve["confirm"] = {
        "title": _plain("Resolve the incident?"),
        "text": _plain(f"Incident #{incident_id} will be marked resolved for everyone."),
        "confirm": _plain("Resolve"),
        "deny": _plain("Cancel"),
        "style": "danger",
    }
    buttons.append(resolve)
    buttons.append(_button("Silence", "silence", incident_id))
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": buttons}


def with_state(
    blocks: list[dict[str, Any]], incident_id: int, status: str, by: str | None = None
) -> list[dict[str, Any]]:
    """``blocks`` with their state line and buttons replaced by the ones of ``status``: what a
    button press turns the parent into (the rest of the message kept as it is)."""
    kept = [
        b
        for b in blocks
        if isinstance(b, dict) and b.get("block_id") not in (STATUS_BLOCK, ACTIONS_BLOCK)
    ]
    at = next((i + 1 for i, b in enumerate(kept) if b.get("block_id") == HEADER_BLOCK), 0)
    out = [*kept[:at], status_block(status, by), *kept[at:]]
    actions = actions_block(incident_id, status)
    if actions is not None:
        out.append(actions)
    if len(out) > MAX_BLOCKS:  # keep the header, state, last (context) block and the buttons
        tail = 2 if actions is not None else 1
        out = out[: MAX_BLOCKS - tail] + out[-tail:]
    return out


def parent_body(message: Message) -> list[dict[str, Any]]:
    """The alert blocks of the incident's message (without its header, mentions and buttons)."""
    blocks = render_message(dataclasses.replace(message, mentions=()))["blocks"]
    body = blocks[1:]
    room = MAX_BLOCKS - 3  # header, state line, buttons
    if len(body) > room:
        body = body[: room - 1] + body[-1:]
    return body


def parent_blocks(
    incident_id: int, status: str, severity: str, title: str, body: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    return with_state([header_block(incident_id, severity, title), *body], incident_id, status)


def parent_metadata(incident_id: int) -> dict[str, Any]:
    """Slack's message metadata of an incident's parent: how it is found again."""
    return {"event_type": PARENT_EVENT, "event_payload": {"incident_id": incident_id}}


def is_parent_of(message: dict[str, Any], incident_id: int) -> bool:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != PARENT_EVENT:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("incident_id") == incident_id


def parent_text(incident_id: int, status: str, severity: str, title: str) -> str:
    """The parent's notification text."""
    heading = one_line(f"[{status.upper()}] [{severity.upper()}] Incident #{incident_id}: {title}")
    return escape_mrkdwn(truncate(heading, 300))


def utc_now() -> datetime:
    return datetime.now(UTC)


def _is_channel_id(channel: str) -> bool:
    """``C0123ABCD`` (public), ``G…`` (private), ``D…`` (direct): not a ``#name``."""
    return len(channel) >= 9 and channel[0] in "CGD" and channel.isalnum() and channel.isupper()


class IncidentThreads:
    """The Web API mode of the Slack channel (``SlackNotifier(incidents=...)``)."""

    def __init__(
        self,
        api: SlackWebApi,
        channel: str,
        threads: SlackThreads,
        *,
        clock: Callable[[], datetime] = utc_now,
        parent_wait: timedelta = PARENT_WAIT,
    ) -> None:
        self.api = api
        self.channel = channel
        self.threads = threads
        self.clock = clock
        self.parent_wait = parent_wait
        # the channel's id (conversations.history takes no #name): configured, or learned
        self.channel_id = channel if _is_channel_id(channel) else ""

    def __repr__(self) -> str:
        return f"IncidentThreads(channel={self.channel!r})"

    async def notify(self, message: Message) -> None:
        incident_id = message.incident_id
        if incident_id is None:  # the dead man's switch, alerts from before incidents
            await self._post(message)
            return
        now = self.clock()
        parent: Posted | None = None
        wait: tuple[float, str] | None = None
        failed: SlackApiError | None = None
        async with self.threads.parent(incident_id, now) as claim:
            if claim is None:
                wait = BUSY_RETRY_SECONDS, "another worker holds the incident's Slack message"
            elif claim.status is None:
                pass  # no such incident (purged): a message of its own
            elif claim.channel and claim.ts:
                parent = Posted(claim.channel, claim.ts)
                if not message.mentions:
                    await self._update_parent(incident_id, claim, message, now)
            elif message.mentions or message.action:
                pass  # a notice to people, or of an action, never becomes the incident's message
            elif message.status == "firing" or (
                claim.waiting_since is not None and now - claim.waiting_since >= self.parent_wait
            ):
                failed = await self._create_parent(incident_id, claim, message, now)
                if failed is None:
                    return
            else:
                await claim.waiting(now)
                wait = WAIT_RETRY_SECONDS, "waiting for the incident's first Slack message"
        if failed is not None:  # raised once the claim committed that it went unanswered
            raise failed
        if wait is not None:
            raise DeliveryError(wait[1], retryable=True, retry_after=wait[0])
        if message.action:  # acknowledged or resolved by someone: the parent shows it; one line
            if parent is not None and message.notice:
                text = escape_mrkdwn(message.notice)
                await self.api.post_message(
                    parent.channel,
                    message.notice,
                    [{"type": "section", "text": _mrkdwn(text)}],
                    thread_ts=parent.ts,
                )
            return
        if parent is not None:
            await self._post(message, thread=parent)
        else:
            await self._post(message)

    async def _create_parent(
        self, incident_id: int, claim: ParentClaim, message: Message, now: datetime
    ) -> SlackApiError | None:
        """Post the parent (or adopt the one an unanswered post left); the error to raise once
        the claim has recorded that the post went unanswered."""
        status = claim.status or message.status
        title = claim.title or message.incident_title
        body = parent_body(message)
        if claim.unanswered_since is not None:
            found = await self._find_parent(incident_id)
            if found is not None:
                log.info(
                    "adopted the incident's Slack message posted without an answer",
                    extra={"incident_id": incident_id, "ts": found.ts},
                )
                await claim.created(found.channel, found.ts, body, message.severity, now)
                await self._update_parent(incident_id, claim, message, now)
                return None
        try:
            posted = await self.api.post_message(
                self.channel,
                parent_text(incident_id, status, claim.severity, title),
                parent_blocks(incident_id, status, claim.severity, title, body),
                metadata=parent_metadata(incident_id),
            )
        except SlackApiError as exc:
            if not exc.retryable or exc.error == "ratelimited":
                raise  # refused: nothing was posted
            await claim.unanswered(now)
            return exc
        self.channel_id = posted.channel
        await claim.created(posted.channel, posted.ts, body, message.severity, now)
        return None

    async def _find_parent(self, incident_id: int) -> Posted | None:
        """The incident's parent among the channel's newest messages, by its metadata; None
        when it is not there or cannot be looked for (no channel id, no history scope)."""
        if not self.channel_id:
            log.warning(
                "cannot look for an unanswered Slack message: SLACK_CHANNEL is a name; set"
                " the channel's id (C0...) to avoid a second message",
                extra={"incident_id": incident_id},
            )
            return None
        cursor = ""
        for _ in range(HISTORY_PAGES):
            try:
                messages, cursor = await self.api.history(self.channel_id, cursor=cursor)
            except SlackApiError as exc:
                if exc.retryable:
                    raise  # try the whole delivery again later, still without posting
                log.warning(
                    "cannot look for an unanswered Slack message (needs the channels:history"
                    " scope); posting it again",
                    extra={"incident_id": incident_id, "error": exc.error},
                )
                return None
            for found in messages:
                ts = found.get("ts")
                if is_parent_of(found, incident_id) and isinstance(ts, str) and ts:
                    return Posted(self.channel_id, ts)
            if not cursor:
                return None
        return None

    async def _update_parent(
        self, incident_id: int, claim: ParentClaim, message: Message, now: datetime
    ) -> None:
        assert claim.channel is not None
        assert claim.ts is not None
        assert claim.status is not None
        body, body_severity = claim.body, claim.body_severity or message.severity
        # A page (severity raised) lists every alert of the incident: it replaces the body; a
        # resolve lists only the alerts resolving, so the body stays as it was.
        if body is None or (
            message.status == "firing"
            and message.alerts
            and SEVERITY_RANK[message.severity] >= SEVERITY_RANK.get(body_severity, 0)
        ):
            body, body_severity = parent_body(message), message.severity
        title = claim.title or message.incident_title
        try:
            await self.api.update_message(
                claim.channel,
                claim.ts,
                parent_text(incident_id, claim.status, claim.severity, title),
                parent_blocks(incident_id, claim.status, claim.severity, title, body),
            )
        except SlackApiError as exc:
            if exc.retryable:
                raise  # nothing sent yet: the whole delivery is tried again
            # message_not_found, cant_update_message...: the reply still goes out.
            log.warning(
                "could not update the incident's Slack message",
                extra={"incident_id": incident_id, "error": exc.error},
            )
            return
        await claim.updated(body, body_severity, now)

    async def _post(self, message: Message, *, thread: Posted | None = None) -> None:
        payload = render_message(message)
        posted = await self.api.post_message(
            thread.channel if thread else self.channel,
            render_fallback(message),
            payload["blocks"],
            thread_ts=thread.ts if thread else None,
        )
        if thread is None:
            self.channel_id = posted.channel  # Slack answers with the id of a #name

    async def aclose(self) -> None:
        await self.api.aclose()
