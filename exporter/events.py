"""The event types of the ingest API as strict msgspec schemas, and per-event validation."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

Id = Annotated[str, Meta(min_length=1, max_length=128)]
Text = Annotated[str, Meta(max_length=2048)]
Short = Annotated[str, Meta(max_length=128)]
Currency = Annotated[str, Meta(min_length=3, max_length=3)]
Amount = Annotated[int, Meta(ge=0, le=10**12, description="minor units (cents)")]
Millis = Annotated[float, Meta(ge=0, le=86_400_000, description="milliseconds")]
Timestamp = Annotated[float, Meta(ge=0, le=10**14, description="Unix time in milliseconds")]
Status = Annotated[int, Meta(ge=100, le=599)]


# gc=False: an event holds strings and numbers only (no cycles), so the collector need not track
# the thousands a batch allocates
class _Event(Struct, tag_field="type", kw_only=True, frozen=True, gc=False):
    timestamp: Timestamp | None = None


class PaymentSucceeded(_Event, tag="payment.succeeded"):
    organization_id: Id
    amount: Amount | None = None
    currency: Currency | None = None
    duration_ms: Millis | None = None


class PaymentFailed(_Event, tag="payment.failed"):
    organization_id: Id
    amount: Amount | None = None
    currency: Currency | None = None
    error: Text | None = None
    decline_code: Short | None = None
    failure_code: Short | None = None
    duration_ms: Millis | None = None
    # the application's id of the payment (e.g. the Stripe PaymentIntent): retries of one
    # payment within 10 minutes count once among the failed payments (passiton_payments_total)
    payment_id: Id | None = None


class PaymentTimeout(_Event, tag="payment.timeout"):
    organization_id: Id
    duration_ms: Millis | None = None
    provider: Short | None = None


class StripeWebhookFailed(_Event, tag="stripe.webhook_failed"):
    event_type: Short
    error: Text | None = None


class WidgetLoaded(_Event, tag="widget.loaded"):
    organization_id: Id
    widget_id: Id
    duration_ms: Millis
    url: Text | None = None


class WidgetLoadError(_Event, tag="widget.load_error"):
    organization_id: Id
    widget_id: Id
    error: Text | None = None
    url: Text | None = None
    source: Text | None = None


class WidgetRenderError(_Event, tag="widget.render_error"):
    organization_id: Id
    widget_id: Id
    error: Text | None = None
    url: Text | None = None
    source: Text | None = None


class WidgetScriptError(_Event, tag="widget.script_error"):
    organization_id: Id
    widget_id: Id
    error: Text | None = None
    url: Text | None = None
    source: Text | None = None


class TrafficRequest(_Event, tag="traffic.request"):
    organization_id: Id
    path: Text | None = None
    country: Short | None = None
    user_agent: Text | None = None
    ip: Short | None = None


class EndpointRequest(_Event, tag="endpoint.request"):
    route: Text
    method: Annotated[str, Meta(min_length=1, max_length=16)]
    status: Status
    duration_ms: Millis


class AuthFailed(_Event, tag="auth.failed"):
    reason: Annotated[str, Meta(min_length=1, max_length=128)]
    organization_id: Id | None = None
    ip: Short | None = None


class DatabaseError(_Event, tag="database.error"):
    operation: Annotated[str, Meta(min_length=1, max_length=128)]
    error: Text | None = None


Event = (
    PaymentSucceeded
    | PaymentFailed
    | PaymentTimeout
    | StripeWebhookFailed
    | WidgetLoaded
    | WidgetLoadError
    | WidgetRenderError
    | WidgetScriptError
    | TrafficRequest
    | EndpointRequest
    | AuthFailed
    | DatabaseError
)

EVENT_CLASSES: tuple[type[_Event], ...] = Event.__args__  # type: ignore[attr-defined]
EVENT_TYPES: tuple[str, ...] = tuple(cls.__struct_config__.tag for cls in EVENT_CLASSES)
# The beacon takes widget events only: browsers report their widget, nothing else.
BEACON_TYPES = frozenset(t for t in EVENT_TYPES if t.startswith("widget."))
WIDGET_ERRORS = (WidgetLoadError, WidgetRenderError, WidgetScriptError)

_single_decoder = msgspec.json.Decoder(Event)
_batch_decoder = msgspec.json.Decoder(list[Event])
_any_decoder = msgspec.json.Decoder()


class Rejection(Struct, frozen=True):
    index: int
    type: str
    reason: str
    message: str


_REASONS = (
    (re.compile(r"missing required field"), "missing_field"),
    (re.compile(r"^Invalid value .* at `\$(\[\d+\])?\.type`"), "unknown_type"),
    (
        re.compile(r"missing required field `type`|Object missing required field `type`"),
        "unknown_type",
    ),
    (re.compile(r"length"), "too_long"),
    (re.compile(r"Expected `(int|float|number)` [<>]=?"), "out_of_range"),
    (re.compile(r"Expected `[^`]+`, got `[^`]+`"), "invalid_type"),
)


def _reason(message: str) -> str:
    if "`type`" in message:
        return "unknown_type"
    for pattern, reason in _REASONS:
        if pattern.search(message):
            return reason
    return "invalid_field"


def _type_of(item: Any) -> str:
    if isinstance(item, dict):
        value = item.get("type")
        if isinstance(value, str) and value in EVENT_TYPES:
            return value
    return "unknown"


_INTEGER_FIELDS = ("amount", "status")


class MalformedBody(ValueError):
    """The body is not JSON, or not an event object or array of them; ``reason`` is the
    refusal's (``invalid_json``, or ``too_deep`` for JSON nested past the decoder's limit)."""

    def __init__(self, message: str, reason: str = "invalid_json") -> None:
        super().__init__(message)
        self.reason = reason


_TOO_DEEP = "body is JSON nested too deeply (the decoder's recursion limit)"


def _too_deep() -> MalformedBody:
    return MalformedBody(_TOO_DEEP, "too_deep")


def decode_raw(body: bytes, max_events: int) -> tuple[list[Any], bool]:
    """The body's items as plain JSON values, and whether it was a batch (an array). A body that
    is not JSON, nested too deeply, or whose top level is neither an object nor an array, raises
    MalformedBody; an oversized batch raises BatchTooLarge."""
    try:
        raw = _any_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    if isinstance(raw, dict):
        return [raw], False
    if isinstance(raw, list):
        if len(raw) > max_events:
            raise BatchTooLarge(len(raw), max_events)
        return raw, True
    raise MalformedBody("body must be a JSON event object or an array of event objects")


def validate(
    items: list[Any], allowed: frozenset[str] | None = None
) -> tuple[list[_Event], list[Rejection]]:
    """Each item checked against its event type's schema: (valid events, rejections)."""
    valid: list[_Event] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        kind = _type_of(item)
        if not isinstance(item, dict):
            rejected.append(Rejection(index, kind, "not_an_object", "event must be a JSON object"))
            continue
        if allowed is not None and kind in EVENT_TYPES and kind not in allowed:
            rejected.append(
                Rejection(index, kind, "type_not_allowed", f"type {kind!r} is not accepted here")
            )
            continue
        for name in _INTEGER_FIELDS:
            # JSON Schema counts 169.0 as an integer; so do we, and no other float.
            value = item.get(name)
            if type(value) is float and value.is_integer():
                item[name] = int(value)
        try:
            valid.append(msgspec.convert(item, Event))
        except msgspec.ValidationError as exc:
            message = str(exc)
            rejected.append(Rejection(index, kind, _reason(message), message))
    return valid, rejected


def decode_events(
    body: bytes, max_events: int, allowed: frozenset[str] | None = None
) -> tuple[list[_Event], list[Rejection], bool]:
    """Decode one event object or an array of them.

    Returns (valid events, rejections, was_batch). Invalid events are rejected one by one;
    a body that is not JSON, nested too deeply, or whose top level is neither an object nor an
    array, raises MalformedBody. An oversized batch raises BatchTooLarge.
    """
    if allowed is None:
        first = body[:1]
        if first.isspace():  # JSON's whitespace first: look past it (a copy, but rare)
            first = body.lstrip()[:1]
        is_batch = first == b"["
        try:
            if is_batch:
                events = _batch_decoder.decode(body)
                if len(events) > max_events:
                    raise BatchTooLarge(len(events), max_events)
                return events, [], True
            return [_single_decoder.decode(body)], [], False
        except msgspec.ValidationError:
            pass  # fall through to per-event validation for precise, per-index errors
        except msgspec.DecodeError as exc:
            raise MalformedBody(f"body is not valid JSON: {exc}") from None
        except RecursionError:
            raise _too_deep() from None
    items, is_batch = decode_raw(body, max_events)
    valid, rejected = validate(items, allowed)
    return valid, rejected, is_batch


class BatchTooLarge(ValueError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"batch of {size} events is over the limit of {limit}")
        self.size = size
        self.limit = limit
