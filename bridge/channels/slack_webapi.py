"""A small client of Slack's Web API (``chat.postMessage`` with message metadata,
``chat.update``, ``conversations.history``, response URLs).

Slack answers most failures with HTTP 200 and ``{"ok": false, "error": "..."}``; the error code
says whether sending again can help. ``ratelimited`` comes as HTTP 429 with ``Retry-After`` (it
also pushes the channel's next slot out); ``internal_error``, ``fatal_error``, the other
server-side codes, 5xx and network errors are worth retrying; every other code (``invalid_auth``,
``channel_not_found``, ``not_in_channel``, ``msg_too_long``, ``invalid_blocks``, ...) is the
request's fault and permanent. The bot token travels only in the ``Authorization`` header and
never appears in an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from bridge.channels.base import DeliveryError
from bridge.channels.ratelimit import IntervalLimiter
from bridge.channels.text import one_line, truncate
from bridge.retry import parse_retry_after
from bridge.sanitize import redact
from passiton_common.http_client import async_client

# Error codes Slack documents as its own trouble, not the request's.
TRANSIENT_ERRORS = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "ratelimited",
        "rate_limited",
        "team_added_to_org",
    }
)


class SlackApiError(DeliveryError):
    """A failed Web API call; ``error``: Slack's code (``invalid_auth``...) or ``http_NNN``."""

    def __init__(
        self,
        method: str,
        error: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"Slack {method}: {error}", retryable=retryable, retry_after=retry_after)
        self.method = method
        self.error = error


@dataclass(frozen=True)
class Posted:
    """Where a message went: the channel id Slack answered with and the message's ``ts``."""

    channel: str
    ts: str


def is_slack_url(url: str) -> bool:
    """True for an https URL on slack.com (a ``response_url`` Slack handed out)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com"))


class SlackWebApi:
    """Calls Slack's Web API with a bot token. One slot per channel per ``limiter`` interval
    (Slack allows about one message a second in a channel)."""

    def __init__(
        self,
        token: str,
        api_url: str = "https://slack.com/api",
        http: httpx.AsyncClient | None = None,
        *,
        timeout: float = 10.0,
        limiter: IntervalLimiter | None = None,
    ) -> None:
        self._token = token
        self.api_url = api_url.rstrip("/")
        self._owns_http = http is None
        self._http = http or async_client(timeout=timeout)
        self._timeout = timeout
        self.limiter = limiter or IntervalLimiter(1.0)

    def __repr__(self) -> str:
        return f"SlackWebApi(api_url={self.api_url!r}, token=<hidden>)"

    async def call(self, method: str, payload: dict[str, Any], *, key: str = "") -> dict[str, Any]:
        """POST ``payload`` as JSON to ``method``; Slack's answer when ``ok``, else SlackApiError.
        ``key`` is the rate-limit key (the channel)."""
        await self.limiter.acquire(key or method)
        try:
            response = await self._http.post(
                f"{self.api_url}/{method}",
                json=payload,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise SlackApiError(method, f"timeout: {type(exc).__name__}", retryable=True) from exc
        except httpx.HTTPError as exc:
            detail = redact(f"{type(exc).__name__}: {exc}").replace(self._token, "<token>")
            raise SlackApiError(method, detail, retryable=True) from exc
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if response.status_code == 429:
            if retry_after:
                self.limiter.defer(key or method, retry_after)
            raise SlackApiError(method, "ratelimited", retryable=True, retry_after=retry_after)
        if response.status_code >= 500:
            raise SlackApiError(
                method, f"http_{response.status_code}", retryable=True, retry_after=retry_after
            )
        if response.status_code != 200:
            # 404 unknown method, 410 gone...: the same call cannot succeed later.
            raise SlackApiError(method, f"http_{response.status_code}", retryable=False)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            body = truncate(one_line(response.text), 100)
            raise SlackApiError(method, f"not a Web API answer: {body!r}", retryable=True)
        if data.get("ok") is True:
            return data
        error = str(data.get("error") or "unknown_error")
        error = truncate(one_line(error), 100)
        raise SlackApiError(method, error, retryable=error in TRANSIENT_ERRORS)

    async def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Posted:
        """``metadata``: Slack's message metadata (``event_type``, ``event_payload``), which
        ``history`` reads back."""
        payload: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            payload["thread_ts"] = thread_ts
        if metadata is not None:
            payload["metadata"] = metadata
        data = await self.call("chat.postMessage", payload, key=channel)
        ts, answered = data.get("ts"), data.get("channel")
        if not isinstance(ts, str) or not ts:
            raise SlackApiError("chat.postMessage", "answer without ts", retryable=False)
        return Posted(answered if isinstance(answered, str) and answered else channel, ts)

    async def history(
        self, channel: str, *, oldest: str = "", cursor: str = "", limit: int = 200
    ) -> tuple[list[dict[str, Any]], str]:
        """One page of the channel's top-level messages (since ``oldest``, a Slack ts, when
        given), newest first, with their metadata (``conversations.history``: scope
        ``channels:history``, or ``groups:history`` for a private channel; ``channel`` must be
        an id); and the cursor of the next page ("" at the end)."""
        payload: dict[str, Any] = {
            "channel": channel,
            "limit": limit,
            "include_all_metadata": True,
        }
        if oldest:
            payload |= {"oldest": oldest, "inclusive": True}
        if cursor:
            payload["cursor"] = cursor
        data = await self.call("conversations.history", payload, key=f"history:{channel}")
        messages = data.get("messages")
        meta = data.get("response_metadata")
        following = meta.get("next_cursor") if isinstance(meta, dict) else ""
        return (
            [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else [],
            following if isinstance(following, str) and data.get("has_more") else "",
        )

    async def update_message(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]
    ) -> None:
        await self.call(
            "chat.update",
            {"channel": channel, "ts": ts, "text": text, "blocks": blocks},
            key=channel,
        )

    async def respond(self, response_url: str, payload: dict[str, Any]) -> bool:
        """POST to an interaction's ``response_url`` (ephemeral answers; the caller checks it is
        Slack's, ``is_slack_url``). True when Slack took it. Never raises: the press was
        already answered."""
        try:
            response = await self._http.post(response_url, json=payload, timeout=self._timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
