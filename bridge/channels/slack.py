"""Slack: one Block Kit message per notification group, with a text fallback, by incoming
webhook; with a bot token and channel (``slack_incident.py``) one message per incident instead.

Every piece of alert text goes through ``escape_mrkdwn`` and every text object is ``verbatim``,
so a label value can neither mention (``<!channel>``, ``<@U123>``) nor link (``<http://x|y>``,
bare URLs) — the only links are the ones rendered here from http(s) URLs. Messages are spaced at
least ``min_interval`` apart per webhook URL (Slack allows about one a second); a 429 pushes the
next slot out by its ``Retry-After`` as well as failing the delivery as retryable. A message's
``mentions`` (Slack user ids, validated by ``Message``) are the only ``<@…>`` rendered: a line at
the top of the message.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from bridge.channels.base import DeliveryError, deliver_each
from bridge.channels.ratelimit import IntervalLimiter
from bridge.channels.text import (
    alert_headline,
    detail_labels,
    escape_mrkdwn,
    format_time,
    one_line,
    safe_url,
    truncate,
    truncate_escaped,
)
from bridge.model import Alert, Message
from bridge.retry import parse_retry_after
from bridge.sanitize import redact
from passiton_common.http_client import async_client

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 3000
MAX_DESCRIPTION = 1000

_SEVERITY_EMOJI = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_circle:",
    "low": ":large_blue_circle:",
}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _link(url: str, label: str) -> str | None:
    safe = safe_url(url)
    if safe is None:
        return None
    # Inside <url|label> a "|" or ">" would end the URL early; percent-encode them.
    href = escape_mrkdwn(quote(safe, safe=":/?#[]@!$&'()*+,;=%~-._"))
    return f"<{href}|{escape_mrkdwn(label)}>"


def _header_text(title: str) -> str:
    # plain_text is never parsed for mentions; the angle brackets go anyway, belt and braces.
    text = one_line(title).replace("<", "\u2039").replace(">", "\u203a")
    return truncate(text, MAX_HEADER_TEXT) or "Alert"


def render_alert(alert: Alert) -> str:
    """The mrkdwn text of one alert's section, within Slack's 3000 characters."""
    emoji = ":white_check_mark:" if alert.status == "resolved" else _SEVERITY_EMOJI[alert.severity]
    lines = [f"{emoji} *{escape_mrkdwn(alert_headline(alert))}*"]
    if alert.description:
        lines.append(escape_mrkdwn(truncate(alert.description.strip(), MAX_DESCRIPTION)))
    labels = ", ".join(f"{k}={v}" for k, v in detail_labels(alert))
    if labels:
        lines.append(f"_Labels:_ {escape_mrkdwn(truncate(labels, 800))}")
    when = f"_Started:_ {format_time(alert.starts_at)}"
    if alert.status == "resolved" and alert.ends_at:
        when += f"  _Resolved:_ {format_time(alert.ends_at)}"
    lines.append(when)
    links = [
        link
        for link in (_link(alert.generator_url, "Graph"), _link(alert.runbook_url, "Runbook"))
        if link
    ]
    if links:
        lines.append(" | ".join(links))
    return truncate_escaped("\n".join(lines), MAX_SECTION_TEXT)


def mention_line(message: Message) -> str:
    """``<@U…> <@W…>`` for the message's mentions (already validated user ids), or ""."""
    return " ".join(f"<@{user}>" for user in message.mentions)


def render_message(message: Message) -> dict[str, Any]:
    """The webhook payload: mentions, header, optional notice, one section per alert, context."""
    blocks: list[dict[str, Any]] = []
    if message.mentions:
        blocks.append({"type": "section", "text": _mrkdwn(mention_line(message))})
    blocks.append(
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _header_text(message.title)},
        }
    )
    if message.notice:
        notice = truncate_escaped(f":warning: {escape_mrkdwn(one_line(message.notice))}", 3000)
        blocks.append({"type": "section", "text": _mrkdwn(notice)})
    # Room for the context block and, when needed, a "more alerts" line.
    room = MAX_BLOCKS - len(blocks) - 1
    alerts = list(message.alerts)
    shown = alerts if len(alerts) <= room else alerts[: room - 1]
    for alert in shown:
        blocks.append({"type": "section", "text": _mrkdwn(render_alert(alert))})
    hidden = len(alerts) - len(shown)
    if hidden:
        blocks.append({"type": "section", "text": _mrkdwn(f"_…and {hidden} more alerts._")})
    context = [f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}"]
    if message.receiver:
        context.append(f"receiver {escape_mrkdwn(truncate(message.receiver, 100))}")
    am_link = _link(message.external_url, "Alertmanager")
    if am_link:
        context.append(am_link)
    blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(context))]})
    return {
        "text": render_fallback(message),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def render_fallback(message: Message) -> str:
    """The plain notification text (shown in push notifications and by old clients)."""
    lines = [escape_mrkdwn(one_line(message.title))]
    if message.mentions:
        lines.insert(0, mention_line(message))
    if message.notice:
        lines.append(escape_mrkdwn(one_line(message.notice)))
    lines.extend(f"• {escape_mrkdwn(truncate(alert_headline(a), 300))}" for a in message.alerts)
    return truncate_escaped("\n".join(lines), MAX_FALLBACK_TEXT)


class IncidentThreads(Protocol):
    """The Web API mode (``slack_incident.IncidentThreads``): an incident's message and thread."""

    async def notify(self, message: Message) -> None: ...

    async def aclose(self) -> None: ...


def _webhook_host(url: str) -> str:
    """A webhook URL without its secret path, for error messages."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return f"{host or 'invalid-url'}/…"


class SlackNotifier:
    """POSTs to the configured webhook, or to each webhook URL in ``Message.recipients``; with
    ``incidents`` (the Web API mode) a message without recipients goes to the incident's thread
    in the bot's channel instead of the webhook."""

    name = "slack"

    def __init__(
        self,
        webhook_url: str | None,
        http: httpx.AsyncClient | None = None,
        *,
        timeout: float = 10.0,
        limiter: IntervalLimiter | None = None,
        incidents: IncidentThreads | None = None,
    ) -> None:
        if webhook_url is None and incidents is None:
            raise ValueError("Slack needs a webhook URL or the Web API")
        self.webhook_url = webhook_url
        self.incidents = incidents
        self._owns_http = http is None
        self._http = http or async_client(timeout=timeout)
        self._timeout = timeout
        self.limiter = limiter or IntervalLimiter(1.0)

    def __repr__(self) -> str:
        mode = "web_api" if self.incidents is not None else "webhook"
        return f"SlackNotifier(mode={mode}, webhook_url=<hidden>)"

    async def notify(self, message: Message) -> None:
        if self.incidents is not None and not message.recipients:
            await self.incidents.notify(message)
            return
        payload = render_message(message)
        urls = message.recipients or ((self.webhook_url,) if self.webhook_url else ())

        async def send(url: str) -> None:
            await self._post(url, payload)

        await deliver_each(urls, send, what="webhook", show=_webhook_host)

    async def _post(self, url: str, payload: dict[str, Any]) -> None:
        if safe_url(url) is None:
            raise DeliveryError("not an http(s) webhook URL", retryable=False)
        await self.limiter.acquire(url)
        try:
            response = await self._http.post(url, json=payload, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timeout: {type(exc).__name__}", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(redact(f"{type(exc).__name__}: {exc}"), retryable=True) from exc
        if 200 <= response.status_code < 300:
            return
        body = truncate(one_line(response.text), 200)
        detail = f"HTTP {response.status_code}: {body or response.reason_phrase}"
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after:
                self.limiter.defer(url, retry_after)
            raise DeliveryError(detail, retryable=True, retry_after=retry_after)
        if response.status_code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise DeliveryError(detail, retryable=True, retry_after=retry_after)
        # 400 invalid_payload/no_text, 403 action_prohibited, 404 no_service/channel_not_found,
        # 410 channel_is_archived...: resending the same message cannot succeed.
        raise DeliveryError(detail, retryable=False)

    async def aclose(self) -> None:
        if self.incidents is not None:
            await self.incidents.aclose()
        if self._owns_http:
            await self._http.aclose()
