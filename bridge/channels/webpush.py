"""Web Push (RFC 8030/8291/8292): a person's on-call pages on the phones and browsers where
their console user turned notifications on (``via: push`` in an escalation step).

A message's recipients are console user names; each user's subscriptions (``PushStore``,
``bridge/storage/push.py``) get the page as a small JSON document, encrypted to the browser's
keys with ``aes128gcm`` by ``pywebpush`` and signed with the bridge's VAPID key (an ES256 JWT
whose ``aud`` is the push service's origin, ``exp`` within 24 hours, ``sub`` the subject). The
service worker (``console/static/sw.js``) shows it with an "Acknowledge" action that posts the
page's single-use token back to the console.

The push service's answer decides: 201 (or any 2xx) delivered; 404 or 410 the subscription is
gone (the browser unsubscribed, the app was removed): its row is deleted and it is not tried
again; 429 retried after its ``Retry-After``; 5xx and network errors retried; any other 4xx
(a payload or VAPID the service refuses) is permanent. A user with several browsers is retried
as a whole when one of them failed transiently: the copies carry the same ``Topic`` and
notification ``tag``, so a browser that already has the page shows it once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from bridge.channels.base import DeliveryError, deliver_each
from bridge.channels.text import one_line, truncate
from bridge.channels.webpush_keys import WebPushSettings
from bridge.metrics import WEBPUSH_OUTCOMES
from bridge.model import Message
from bridge.storage.push import PushSubscription
from passiton_common.http_client import async_client

log = logging.getLogger(__name__)

CONSOLE_PREFIX = "/console"
JWT_LIFETIME_SECONDS = 12 * 3600  # RFC 8292: at most 24 hours
MAX_BODY_CHARS = 400
# what the channel's sends came to, per subscription (passiton_bridge_webpush_sends)
OUTCOMES = WEBPUSH_OUTCOMES


class PushStore(Protocol):
    """The subscriptions, as the channel uses them (``bridge.storage.push.PushSubscriptions``)."""

    async def for_user(self, username: str) -> list[PushSubscription]: ...

    async def gone(self, id: int) -> None: ...

    async def succeeded(self, id: int, now: datetime) -> None: ...

    async def failed(self, id: int, now: datetime, error: str) -> None: ...


def payload(message: Message) -> dict[str, object]:
    """What the service worker gets: the notification's text, where a tap leads, the token
    its "Acknowledge" posts. Small (a push message holds about 4 KB)."""
    incident = message.incident_id
    severity = message.severity
    name = message.incident_title or (message.alerts[0].alertname if message.alerts else "")
    if incident is not None:
        title = f"{severity.upper()} #{incident}: {name}"
    else:
        title = f"{severity.upper()}: {name}"
    if message.status == "resolved":
        title = f"RESOLVED {title}"
    firing = [a for a in message.alerts if a.status == "firing"] or list(message.alerts)
    lines = [one_line(a.summary or a.alertname) for a in firing[:3]]
    if len(firing) > 3:
        lines.append(f"and {len(firing) - 3} more")
    if message.notice:
        lines.append(message.notice)
    url = f"{CONSOLE_PREFIX}/incidents/{incident}" if incident is not None else f"{CONSOLE_PREFIX}/"
    return {
        "v": 1,
        "title": truncate(one_line(title), 120),
        "body": truncate("\n".join(lines), MAX_BODY_CHARS),
        "incident": incident,
        "severity": severity,
        "status": message.status,
        "url": url,
        "tag": f"incident-{incident}" if incident is not None else message.group_key[:64],
        "token": message.ack_token if message.status == "firing" else "",
    }


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class WebPushNotifier:
    name = "webpush"

    def __init__(
        self,
        settings: WebPushSettings,
        store: PushStore,
        http: httpx.AsyncClient | None = None,
        *,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.store = store
        self._vapid = Vapid02.from_raw(settings.keys.private_key.encode())
        self._own_http = http is None
        self.http = http or async_client()
        self.timeout = timeout
        self.clock = clock
        # what each subscription's send came to; the bridge counts it (BridgeMetrics.webpush)
        self.count: Callable[[str], None] = lambda outcome: None

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def notify(self, message: Message) -> None:
        users: Sequence[str] = message.recipients
        if not users:
            raise DeliveryError("a push page names no console user", retryable=False)
        body = json.dumps(payload(message), separators=(",", ":")).encode()
        urgency = "high" if message.severity in ("critical", "high") else "normal"
        topic = f"incident-{message.incident_id}" if message.incident_id is not None else ""

        async def send_user(username: str) -> None:
            await self._send_user(username, body, urgency, topic)

        await deliver_each(users, send_user, what="console user")

    async def _send_user(self, username: str, body: bytes, urgency: str, topic: str) -> None:
        subscriptions = await self.store.for_user(username)
        if not subscriptions:
            self.count("no_subscription")
            raise DeliveryError(
                "no browser has push notifications on for this user", retryable=False
            )
        delivered = 0
        transient: list[DeliveryError] = []
        refused: list[DeliveryError] = []
        for subscription in subscriptions:
            try:
                if await self._send(subscription, body, urgency, topic):
                    delivered += 1
            except DeliveryError as exc:
                (transient if exc.retryable else refused).append(exc)
        if transient:
            waits = [e.retry_after for e in transient if e.retry_after is not None]
            raise DeliveryError(
                "; ".join(str(e) for e in transient),
                retryable=True,
                retry_after=max(waits) if waits else None,
            )
        if not delivered:
            reasons = "; ".join(str(e) for e in refused) or "every subscription was gone"
            raise DeliveryError(reasons, retryable=False)

    async def _send(
        self, subscription: PushSubscription, body: bytes, urgency: str, topic: str
    ) -> bool:
        """One browser; True when delivered, False when its subscription turned out gone."""
        endpoint = subscription.endpoint
        parts = urlsplit(endpoint)
        where = f"push service {parts.hostname or '?'} (subscription {subscription.id})"
        try:
            pusher = WebPusher(
                {
                    "endpoint": endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                }
            )
            encrypted = pusher.encode(body, "aes128gcm")["body"]
        except (WebPushException, ValueError) as exc:
            await self.store.failed(subscription.id, self.clock(), f"unusable keys: {exc}")
            self.count("refused")
            raise DeliveryError(f"{where}: unusable subscription keys", retryable=False) from None
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
            "sub": self.settings.subject,
        }
        headers = {
            **self._vapid.sign(claims),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self.settings.ttl_seconds),
            "Urgency": urgency,
        }
        if topic:
            headers["Topic"] = topic
        try:
            response = await self.http.post(
                endpoint, content=encrypted, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            self.count("retry")
            await self.store.failed(subscription.id, self.clock(), type(exc).__name__)
            raise DeliveryError(f"{where}: {type(exc).__name__}", retryable=True) from None
        status = response.status_code
        now = self.clock()
        if 200 <= status < 300:
            await self.store.succeeded(subscription.id, now)
            self.count("sent")
            return True
        if status in (404, 410):
            await self.store.gone(subscription.id)
            self.count("gone")
            log.info("push subscription gone", extra={"subscription": subscription.id})
            return False
        text = f"{where}: HTTP {status}"
        await self.store.failed(subscription.id, now, text)
        if status == 429:
            self.count("rate_limited")
            raise DeliveryError(
                text, retryable=True, retry_after=_retry_after(response.headers.get("Retry-After"))
            )
        if status >= 500 or status == 408:
            self.count("retry")
            raise DeliveryError(text, retryable=True)
        self.count("refused")
        raise DeliveryError(text, retryable=False)
