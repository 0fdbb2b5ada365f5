"""``POST /v1/alertmanager``: authenticate, parse strictly, store durably, then answer.

Alertmanager retries on 5xx and drops on 4xx, so the answer codes carry meaning: 200 only after
the transaction holding the notification's alerts and its deliveries committed, 503 while the
database is unavailable, 400 (with the reason) for a payload that will never be valid.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

import msgspec
from aiohttp import web

from bridge.config import BridgeConfig
from bridge.metrics import BridgeMetrics
from bridge.model import Alert, Notification
from bridge.sanitize import redact_mapping
from bridge.storage import StorageUnavailable

log = logging.getLogger(__name__)

MAX_ALERTS = 10_000
MAX_LABELS = 200
MAX_KEY = 256
MAX_VALUE = 16_384
# a notification larger than this is parsed off the event loop (a worker thread); the common
# one (a few alerts, a few kB) inline, where the thread hop would cost more than the parse
PARSE_INLINE_BYTES = 64 * 1024
TRUNCATED_MARKER = "… [truncated by the bridge: {n} more characters]"


class InvalidPayload(ValueError):
    """The body is not a valid Alertmanager version-4 notification."""


# Limits checked by msgspec while decoding (in C), with the JSON path in the error message.
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY)]
# Values are not limited while decoding: one long annotation is truncated (``clean_value``), it
# must not turn the whole group into a 400 that Alertmanager would drop.
_Value = str
_Mapping = Annotated[dict[_Name, _Value], msgspec.Meta(max_length=MAX_LABELS)]


class _AMAlert(msgspec.Struct, rename="camel"):
    status: Literal["firing", "resolved"]
    labels: _Mapping
    starts_at: datetime
    fingerprint: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    annotations: _Mapping = {}
    ends_at: datetime | None = None
    generator_url: str = msgspec.field(default="", name="generatorURL")


class _AMNotification(msgspec.Struct, rename="camel"):
    version: Literal["4"]
    group_key: str
    status: Literal["firing", "resolved"]
    receiver: str
    alerts: Annotated[list[_AMAlert], msgspec.Meta(min_length=1, max_length=MAX_ALERTS)]
    truncated_alerts: Annotated[int, msgspec.Meta(ge=0)] = 0
    group_labels: _Mapping = {}
    common_labels: _Mapping = {}
    common_annotations: _Mapping = {}
    external_url: str = msgspec.field(default="", name="externalURL")


_decoder = msgspec.json.Decoder(_AMNotification)


# No alert of this system can start before this or more than a year after the bridge's now.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=366)


class AbsurdTime(ValueError):
    """A timestamp no real alert can have; the alert is left out of its notification."""


def _aware(value: datetime, where: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidPayload(f"{where}: timestamp without a timezone")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-23:59 is past year 9999 in UTC
        raise AbsurdTime(f"{where}: {value.isoformat()} is out of range") from None


def _in_range(value: datetime, now: datetime, where: str) -> datetime:
    if not EARLIEST <= value <= now + LATEST_AHEAD:
        raise AbsurdTime(
            f"{where}: {value.isoformat()} is before {EARLIEST.year} or over a year ahead"
        )
    return value


def parse_notification(body: bytes, now: datetime | None = None) -> Notification:
    """Validate a version-4 payload completely (raising InvalidPayload) and sanitise it.

    What one odd alert can carry never costs the group its notification (Alertmanager drops a
    4xx): control characters are replaced (``clean_text``), an over-long value is truncated with
    a marker, and the same alert twice is kept once (a resolve wins over its firing twin). An
    alert with an absurd ``startsAt`` (before 2000, over a year after ``now``, beyond year 9999
    in UTC) is left out and named in ``skipped``; only when every alert is, the notification is
    refused. An absurd ``endsAt`` is treated as unset, as Go's zero time already is.
    """
    now = now or now_utc()
    try:
        raw = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidPayload(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidPayload(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise InvalidPayload("JSON nested too deeply") from None
    if not raw.group_key:
        raise InvalidPayload("groupKey must not be empty")
    kept: dict[tuple[str, datetime], int] = {}
    alerts: list[Alert] = []
    skipped: list[str] = []
    for i, a in enumerate(raw.alerts):
        where = f"$.alerts[{i}]"
        if not a.labels.get("alertname"):
            raise InvalidPayload(f"{where}.labels.alertname is required")
        try:
            starts_at = _in_range(_aware(a.starts_at, f"{where}.startsAt"), now, where)
        except AbsurdTime as exc:
            skipped.append(f"{exc} (alert {clean_text(a.fingerprint)[:128]} left out)")
            continue
        ends_at = _ends_at(a.ends_at, now, f"{where}.endsAt")
        alert = Alert(
            fingerprint=clean_text(a.fingerprint),
            status=a.status,
            labels=clean_mapping(a.labels),
            annotations=clean_mapping(a.annotations),
            starts_at=starts_at,
            ends_at=ends_at,
            generator_url=clean_value(a.generator_url),
        )
        identity = (alert.fingerprint, starts_at)
        if identity in kept:
            # Alertmanager never sends this; a relay might. Store it once, keep the later state.
            if alert.status == "resolved":
                alerts[kept[identity]] = alert
            continue
        kept[identity] = len(alerts)
        alerts.append(alert)
    if not alerts:
        raise InvalidPayload("; ".join(skipped))
    return Notification(
        group_key=clean_text(raw.group_key),
        status=raw.status,
        receiver=clean_value(raw.receiver),
        alerts=tuple(alerts),
        group_labels=clean_mapping(raw.group_labels),
        common_labels=clean_mapping(raw.common_labels),
        external_url=clean_value(raw.external_url),
        truncated_alerts=raw.truncated_alerts,
        duplicates=len(raw.alerts) - len(skipped) - len(alerts),
        skipped=tuple(skipped),
    )


def _ends_at(value: datetime | None, now: datetime, where: str) -> datetime | None:
    """``endsAt``, or None when unset (Go's zero time) or absurd."""
    if value is None or value.year <= 1:
        return None
    try:
        return _in_range(_aware(value, where), now, where)
    except AbsurdTime:
        return None


# C0 and C1 control characters other than tab, newline and carriage return. NUL cannot be stored
# by PostgreSQL at all (text or jsonb); the others corrupt terminals, logs and SMS.
_CONTROL = dict.fromkeys(
    (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)), "\ufffd"
)


def clean_text(text: str) -> str:
    """``text`` with control characters (NUL included) replaced by U+FFFD; linear time."""
    if text.isprintable():  # no control character at all: the common case, checked in C
        return text
    return text.translate(_CONTROL)


def clean_value(text: str) -> str:
    """A label or annotation value: cleaned, and cut to MAX_VALUE characters with a marker."""
    text = clean_text(text)
    if len(text) <= MAX_VALUE:
        return text
    marker = TRUNCATED_MARKER.format(n=len(text) - MAX_VALUE)
    return text[:MAX_VALUE] + marker


def clean_mapping(m: dict[str, str]) -> dict[str, str]:
    """Labels or annotations cleaned, truncated and redacted (``bridge.sanitize``)."""
    return redact_mapping({clean_text(k): clean_value(v) for k, v in m.items()})


def authorized(header: str | None, token: str) -> bool:
    """Bearer token, or HTTP basic auth with the token as password; constant-time compare."""
    if not token or not header:
        return False
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "bearer":
        # aiohttp decodes header bytes that are not UTF-8 as surrogates: compare them as bytes.
        presented = credentials.encode("utf-8", "surrogateescape")
    elif scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):  # non-ASCII included
            return False
        presented = decoded.partition(b":")[2]
    else:
        return False
    return hmac.compare_digest(presented, token.encode("utf-8", "surrogateescape"))


def now_utc() -> datetime:
    return datetime.now(UTC)


class WebhookTarget(Protocol):
    """What the webhook needs from the bridge (``bridge.app.Bridge``)."""

    config: BridgeConfig
    metrics: BridgeMetrics

    async def ingest(self, notification: Notification) -> Any: ...


def alertmanager_handler(
    bridge: WebhookTarget,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The ``POST /v1/alertmanager`` handler of one bridge."""

    async def handler(request: web.Request) -> web.Response:
        return await handle_alertmanager(bridge, request)

    return handler


async def handle_alertmanager(bridge: WebhookTarget, request: web.Request) -> web.Response:
    metrics = bridge.metrics
    if not authorized(request.headers.get("Authorization"), bridge.config.webhook_token):
        metrics.notifications_received.labels(status="unauthorized").inc()
        return web.json_response(
            {"error": "missing or invalid token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="passiton-bridge"'},
        )
    length = request.content_length
    if length is not None and length > bridge.config.max_body_bytes:
        metrics.notifications_received.labels(status="too_large").inc()
        return web.json_response({"error": "payload too large"}, status=413)
    timeout = bridge.config.body_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.notifications_received.labels(status="too_large").inc()
        return web.json_response({"error": "payload too large"}, status=413)
    except TimeoutError:
        # 503, not 408: Alertmanager drops a 4xx, and a slow network must not lose the group.
        metrics.notifications_received.labels(status="body_timeout").inc()
        return web.json_response(
            {"error": f"body not received within {timeout:g}s"},
            status=503,
            headers={"Connection": "close"},
        )
    try:
        if len(body) > PARSE_INLINE_BYTES:
            # Validating and redacting megabytes of crafted values costs seconds of CPU: done in
            # a worker thread, the loop keeps its turns (the interpreter hands the GIL back to
            # the loop between regex calls, each on one value of at most MAX_VALUE characters).
            notification = await asyncio.to_thread(parse_notification, body)
        else:
            notification = parse_notification(body)
    except InvalidPayload as exc:
        metrics.notifications_received.labels(status="invalid").inc()
        log.warning("invalid alertmanager payload", extra={"reason": str(exc)})
        return web.json_response({"error": "invalid payload", "reason": str(exc)}, status=400)
    try:
        result = await bridge.ingest(notification)
    except StorageUnavailable as exc:
        metrics.notifications_received.labels(status="unavailable").inc()
        log.warning("storage unavailable, asking alertmanager to retry", extra={"error": str(exc)})
        return web.json_response({"error": "storage unavailable"}, status=503)
    except Exception:
        metrics.notifications_received.labels(status="error").inc()
        log.exception("failed to store notification")
        return web.json_response({"error": "internal error"}, status=500)
    if notification.duplicates:
        log.warning(
            "the same alert arrived twice in one notification; stored once",
            extra={"group_key": notification.group_key, "duplicates": notification.duplicates},
        )
    if notification.skipped:
        metrics.alerts_skipped.inc(len(notification.skipped))
        log.warning(
            "alerts with absurd times left out of the notification",
            extra={"group_key": notification.group_key, "reasons": list(notification.skipped)},
        )
    if notification.truncated_alerts:
        log.warning(
            "alertmanager truncated the notification; raise max_alerts in its webhook config",
            extra={"group_key": notification.group_key, "truncated": notification.truncated_alerts},
        )
    metrics.notifications_received.labels(status="accepted").inc()
    return web.json_response(
        {
            "status": "stored",
            "alerts": len(notification.alerts),
            "new": result.new_events,
            "deliveries": result.deliveries,
            **({"skipped": list(notification.skipped)} if notification.skipped else {}),
        }
    )
