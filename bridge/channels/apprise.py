"""Apprise: one notification to each Apprise URL (ntfy, Gotify, Matrix, Telegram, Discord, JSON
and form webhooks, ...: https://github.com/caronc/apprise/wiki).

A message's recipients are Apprise URLs: its severity's ``APPRISE_URLS_*`` (the router puts them
in the message) or an on-call person's ``apprise`` contacts. A message without recipients (the
dead man's switch, ``test-alerts``) goes to its severity's URLs.

Apprise is synchronous, so each URL is sent in a worker thread (``asyncio.to_thread``; a
message's URLs at once) under Apprise's own call timeout, and the wait for the thread is bounded
as well. A URL Apprise cannot
parse (or whose service is disabled on this system) fails permanently; a send that fails is
retried, unless the service refused it with an HTTP 4xx other than 408, 425 and 429 (the status
Apprise's service logs as ``error=NNN``), which no retry will change. ``deliver_each`` reports
which URLs are still owed the message (``DeliveryError.remaining``).

Apprise URLs are credentials (tokens, topics, passwords): they are never logged nor written into
an error; a URL is shown as its scheme and a short digest (``ntfys://…#3f2a9c``). Apprise's own
log lines, which quote unparseable URLs and name hosts, are kept out of the bridge's log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Literal

import apprise
from apprise.utils.parse import parse_urls

from bridge.channels.base import DeliveryError, deliver_each
from bridge.channels.text import render_plain, truncate
from bridge.model import Message

# Apprise logs the URLs it cannot parse, and hosts, topics and more while sending: its log lines
# never reach the bridge's log (the notifier describes each failure without the URL).
logging.getLogger("apprise").propagate = False

MAX_BODY = 4000
MAX_TITLE = 250
# HTTP statuses worth another try; any other 4xx will not change by retrying
RETRYABLE_4XX = frozenset({408, 425, 429})
_STATUS = re.compile(r"\berror=(\d{3})(?:\d{2})?\b")  # ntfy: 42901 is HTTP 429
_NOTIFY_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "high": apprise.NotifyType.FAILURE,
    "medium": apprise.NotifyType.WARNING,
    "low": apprise.NotifyType.INFO,
}
Outcome = Literal["sent", "invalid", "failed", "timeout"]


def split_urls(text: str) -> tuple[str, ...]:
    """Apprise URLs separated by commas or white space (a comma inside a URL's query stays)."""
    return tuple(url for url in parse_urls(text) if url)


def is_valid_url(url: str) -> bool:
    """Whether Apprise can parse ``url`` into one of its services."""
    return apprise.Apprise(asset=_asset()).add(url)


def show_url(url: str) -> str:
    """A URL as errors and logs may show it: its scheme and a digest, never its secrets."""
    scheme = url.partition("://")[0] if "://" in url else "?"
    scheme = scheme if scheme.isascii() and scheme.isalnum() and len(scheme) <= 20 else "?"
    return f"{scheme}://…#{hashlib.sha256(url.encode()).hexdigest()[:6]}"


def _asset() -> apprise.AppriseAsset:
    # memory: Apprise keeps no cache files on disk
    return apprise.AppriseAsset(app_id="PassItOn monitoring", storage_mode="memory")


def send_one(
    url: str, title: str, body: str, notify_type: str, timeout: float
) -> tuple[Outcome, int | None]:
    """Send to one URL (blocking); the outcome and the HTTP status the service logged, if any."""
    target = apprise.Apprise(asset=_asset())
    if not target.add(url):
        return "invalid", None
    result = target.notify(
        body=body,
        title=title,
        notify_type=notify_type,
        body_format=apprise.NotifyFormat.TEXT,
        timeout=timeout,
    )
    if result:
        return "sent", None
    status = None
    for service in result:
        for entry in service.logs():
            found = _STATUS.search(entry.message)
            if found:
                status = int(found.group(1))
    timed_out = result.status == apprise.AppriseResultStatus.TIMEOUT or any(
        s.status == apprise.AppriseResultStatus.TIMEOUT for s in result
    )
    return ("timeout" if timed_out else "failed"), status


class AppriseNotifier:
    name = "apprise"

    def __init__(
        self,
        urls_by_severity: Mapping[str, tuple[str, ...]] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.urls_by_severity = dict(urls_by_severity or {})
        self.timeout = timeout

    def __repr__(self) -> str:
        severities = ",".join(s for s, urls in self.urls_by_severity.items() if urls)
        return f"AppriseNotifier(severities={severities!r})"

    async def notify(self, message: Message) -> None:
        urls = message.recipients or self.urls_by_severity.get(message.severity, ())
        if not urls:
            raise DeliveryError(
                f"no Apprise URL for severity {message.severity} (APPRISE_URLS_"
                f"{message.severity.upper()})",
                retryable=False,
            )
        title = truncate(message.title, MAX_TITLE)
        body = truncate(render_plain(message).partition("\n")[2].strip() or message.title, MAX_BODY)
        notify_type = (
            apprise.NotifyType.SUCCESS
            if message.status == "resolved"
            else _NOTIFY_TYPES.get(message.severity, apprise.NotifyType.INFO)
        )

        # every URL at once (each in its own thread), so that the whole message stays within one
        # Apprise timeout however many URLs time out; then reported as deliver_each does
        outcomes = await asyncio.gather(
            *(self._attempt(url, title, body, notify_type) for url in urls)
        )
        failed = dict(zip(urls, outcomes, strict=True))

        async def send(url: str) -> None:
            if (error := failed[url]) is not None:
                raise error

        await deliver_each(urls, send, what="Apprise URL", show=show_url)

    async def _attempt(
        self, url: str, title: str, body: str, notify_type: str
    ) -> DeliveryError | None:
        try:
            await self._send(url, title, body, notify_type)
        except DeliveryError as exc:
            return exc
        return None

    async def _send(self, url: str, title: str, body: str, notify_type: str) -> None:
        try:
            outcome, status = await asyncio.wait_for(
                asyncio.to_thread(send_one, url, title, body, notify_type, self.timeout),
                self.timeout + 5.0,  # Apprise's own deadline comes first
            )
        except TimeoutError as exc:
            raise DeliveryError("timeout", retryable=True) from exc
        except Exception as exc:  # a service's bug: its text may hold the URL
            raise DeliveryError(f"Apprise failed: {type(exc).__name__}", retryable=True) from exc
        if outcome == "sent":
            return
        if outcome == "invalid":
            raise DeliveryError(
                "not a valid Apprise URL (or its service is disabled here)", retryable=False
            )
        if outcome == "timeout":
            raise DeliveryError("timeout", retryable=True)
        if status is not None:
            permanent = 400 <= status < 500 and status not in RETRYABLE_4XX
            raise DeliveryError(f"refused, HTTP {status}", retryable=not permanent)
        raise DeliveryError("the service did not accept the notification", retryable=True)
