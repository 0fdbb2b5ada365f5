"""The beacon's checks in one gate: what a request from a web page must pass before its events are
recorded, answered as a verdict (accepted with its events, or refused with a status, reason and
message). No HTTP here: the handler (``handlers/beacon.py``) turns the verdict into an answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from exporter import beacon_keys
from exporter.config import ExporterConfig
from exporter.edge import RateLimiter
from exporter.events import (
    BEACON_TYPES,
    BatchTooLarge,
    MalformedBody,
    Rejection,
    decode_raw,
    validate,
)
from exporter.handlers.http import Refusal

BEACON_CONTENT_TYPES = ("application/json", "text/plain")


@dataclass(frozen=True, slots=True)
class BeaconRequest:
    """What the gate needs of a beacon request."""

    origin: str | None  # the Origin header
    client: str  # the client address (through the trusted proxies)
    key: str  # the ?key= query parameter, "" when missing
    content_type: str
    now: float  # time.monotonic(), for the rate limits


@dataclass(frozen=True, slots=True)
class BeaconRefusal(Refusal):
    """A refusal of the beacon: a refused key is counted by reason too, a rate limit by which
    limit (``client`` or ``key``), answered with ``Retry-After``."""

    key: bool = False
    rate_limit: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The beacon's events (free text cut), those rejected, and whether the body was a batch."""

    events: list[Any]
    rejected: list[Rejection]
    is_batch: bool


Verdict = Accepted | Refusal
BodyReader = Callable[[int], Awaitable[bytes | Refusal]]


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    return origin in allowed or "*" in allowed


def cut_text(event: Any, length: int) -> Any:
    """A beacon event with its free text (error, url, source) cut to ``length`` characters."""
    long = {
        name: value[:length]
        for name in ("error", "url", "source")
        if isinstance(value := getattr(event, name, None), str) and len(value) > length
    }
    return msgspec.structs.replace(event, **long) if long else event


def _claimed_widget(item: Any) -> tuple[str, str] | None:
    """The (organization, widget) an item claims, when it names both as strings."""
    if not isinstance(item, dict):
        return None
    organization_id, widget_id = item.get("organization_id"), item.get("widget_id")
    if isinstance(organization_id, str) and isinstance(widget_id, str):
        return organization_id, widget_id
    return None


def _key_refusal(status: int, reason: str, message: str) -> BeaconRefusal:
    return BeaconRefusal(status, reason, message, key=True)


def _rate_limited(limit: str, message: str) -> BeaconRefusal:
    return BeaconRefusal(429, "rate_limited", message, rate_limit=limit)


class BeaconGate:
    """The checks, in order: origin, configuration, client rate limit, key present and well
    formed, content type, body size, decoding, one organization and widget claimed by the beacon's
    items, the key that organization's widget key, key rate limit, then each item's validation
    (widget event types only). One instance per application (it holds the rate limiters)."""

    def __init__(self, config: ExporterConfig) -> None:
        self.config = config
        self._client_limiter = RateLimiter(config.beacon_rate_per_minute, config.beacon_max_clients)
        self._key_limiter = RateLimiter(
            config.beacon_key_rate_per_minute, config.beacon_max_clients
        )

    async def check(self, request: BeaconRequest, read_body: BodyReader) -> Verdict:
        """The verdict on one beacon; ``read_body(limit)`` is awaited only when every check that
        needs no body has passed."""
        config = self.config
        if request.origin and not origin_allowed(request.origin, config.cors_origins):
            return Refusal(403, "origin_not_allowed", "origin is not in EXPORTER_CORS_ORIGINS")
        secret = config.beacon_secret
        if not secret:
            return Refusal(
                404, "not_configured", "EXPORTER_BEACON_SECRET is not set", counted=False
            )
        if not self._client_limiter.allow(request.client, request.now):
            return _rate_limited("client", "too many beacons from this client")
        key = request.key
        if not key:
            return _key_refusal(401, "missing_key", "the beacon key (?key=) is missing")
        if not beacon_keys.well_formed(key):
            return _key_refusal(403, "malformed_key", "the beacon key is not well formed")
        if request.content_type not in BEACON_CONTENT_TYPES:
            return Refusal(
                415,
                "unsupported_content_type",
                "Content-Type must be text/plain or application/json",
            )
        body = await read_body(config.beacon_max_body_bytes)
        if isinstance(body, Refusal):
            return body
        try:
            items, is_batch = decode_raw(body, config.beacon_max_events)
        except MalformedBody as exc:
            return Refusal(400, exc.reason, str(exc))
        except BatchTooLarge as exc:
            return Refusal(413, "batch_too_large", str(exc))
        if not items:
            return Accepted([], [], is_batch)
        # The key is checked against the ids the items claim before any item is validated, so
        # a beacon whose events all fail validation is refused for its key like any other.
        pairs = {_claimed_widget(item) for item in items} - {None}
        if len(pairs) > 1:
            return _key_refusal(
                403, "key_mismatch", "every event of a beacon must be for the key's widget"
            )
        if not pairs:
            return _key_refusal(
                403, "key_mismatch", "no event names the key's organization and widget"
            )
        organization_id, widget_id = pairs.pop()
        if not beacon_keys.verify(secret, organization_id, widget_id, key):
            return _key_refusal(403, "forged_key", "the key is not this organization's widget key")
        if not self._key_limiter.allow(key, request.now):
            return _rate_limited("key", "too many beacons for this widget")
        events, rejected = validate(items, BEACON_TYPES)
        length = config.beacon_text_length
        return Accepted([cut_text(e, length) for e in events], rejected, is_batch)
