"""The events the client can send: one group per area (``payment``, ``widget``, ``traffic``,
``dashboard``), each call checked and turned into one event of the exporter's contract."""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from passiton_monitoring_client.routes import normalize_route

MAX_TEXT = 1000  # free text is truncated below the exporter's string limit (2048)
MAX_ID = 128  # the exporter's limit for ids (payment_id)

Event = dict[str, Any]


class InvalidEvent(ValueError):
    pass


# --- argument checking -------------------------------------------------------------------------


def _required_str(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{name} must be a non-empty string, got {value!r:.60}")
    return value


def _optional_id(name: str, value: object) -> str | None:
    """An optional id as the exporter takes it: a non-empty string of at most 128 characters."""
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID:
        raise InvalidEvent(
            f"{name} must be a string of 1 to {MAX_ID} characters, got {value!r:.60}"
        )
    return value


def _text(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, BaseException):
        value = str(value) or type(value).__name__
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} must be a string, got {type(value).__name__}")
    return value[:MAX_TEXT]


def _number(name: str, value: object, *, required: bool = False) -> float | int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{name} must be a number, got {value!r:.60}")
    if not math.isfinite(value) or value < 0:
        raise InvalidEvent(f"{name} must be finite and non-negative, got {value!r}")
    return value


def _amount(value: object) -> int | None:
    number = _number("amount", value)
    if number is None:
        return None
    if number != int(number):
        raise InvalidEvent(f"amount is in minor units and must be whole, got {number!r}")
    return int(number)


def _status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise InvalidEvent(f"status must be an HTTP status code, got {value!r:.60}")
    return int(value)


def _event(type_: str, **fields: Any) -> Event:
    event: Event = {"type": type_, "timestamp": int(time.time() * 1000)}
    for key, value in fields.items():
        if value is not None:
            event[key] = value
    return event


# --- event groups ------------------------------------------------------------------------------

_G = TypeVar("_G", bound="_Group")
_P = ParamSpec("_P")


def _reported(
    build: Callable[Concatenate[_G, _P], Event],
) -> Callable[Concatenate[_G, _P], None]:
    """Turns an event builder into a call that queues the event and never raises.

    Anything wrong with the call, even a missing or unknown argument, is counted and logged.
    """

    @functools.wraps(build)
    def report(self: _G, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            event = build(self, *args, **kwargs)
        except Exception as exc:
            self._monitoring._invalid_call(build.__qualname__, exc)
            return
        self._monitoring._enqueue(event)

    report.__signature__ = inspect.signature(build).replace(  # type: ignore[attr-defined]
        return_annotation="None"
    )
    return report


class EventSink(Protocol):
    """What the event groups report to: the ``Monitoring`` client."""

    def _enqueue(self, event: Event) -> None: ...

    def _invalid_call(self, name: str, exc: Exception) -> None: ...


class _Group:
    __slots__ = ("_monitoring",)

    def __init__(self, monitoring: EventSink) -> None:
        self._monitoring = monitoring


class PaymentEvents(_Group):
    __slots__ = ()

    @_reported
    def success(
        self,
        organization_id: str,
        amount: int | None = None,
        currency: str | None = None,
        duration_ms: float | None = None,
    ) -> Event:
        """A payment succeeded (``payment.succeeded``); ``amount`` in minor units."""
        return _event(
            "payment.succeeded",
            organization_id=_required_str("organization_id", organization_id),
            amount=_amount(amount),
            currency=_text("currency", currency),
            duration_ms=_number("duration_ms", duration_ms),
        )

    @_reported
    def failure(
        self,
        organization_id: str,
        amount: int | None = None,
        currency: str | None = None,
        error: str | BaseException | None = None,
        decline_code: str | None = None,
        failure_code: str | None = None,
        payment_id: str | None = None,
    ) -> Event:
        """A payment failed (``payment.failed``). ``payment_id`` (the Stripe PaymentIntent, up to
        128 characters) makes the payment's retries count as one failed payment."""
        return _event(
            "payment.failed",
            organization_id=_required_str("organization_id", organization_id),
            amount=_amount(amount),
            currency=_text("currency", currency),
            error=_text("error", error),
            decline_code=_text("decline_code", decline_code),
            failure_code=_text("failure_code", failure_code),
            payment_id=_optional_id("payment_id", payment_id),
        )

    @_reported
    def timeout(
        self,
        organization_id: str,
        duration_ms: float | None = None,
        provider: str | None = None,
    ) -> Event:
        """A payment timed out (``payment.timeout``)."""
        return _event(
            "payment.timeout",
            organization_id=_required_str("organization_id", organization_id),
            duration_ms=_number("duration_ms", duration_ms),
            provider=_text("provider", provider),
        )

    @_reported
    def webhook_failed(self, event_type: str, error: str | BaseException | None = None) -> Event:
        """The application's own Stripe webhook handler failed (``stripe.webhook_failed``)."""
        return _event(
            "stripe.webhook_failed",
            event_type=_required_str("event_type", event_type),
            error=_text("error", error),
        )


def _widget_error(
    type_: str,
    organization_id: object,
    widget_id: object,
    error: object,
    url: object,
    source: object,
) -> Event:
    return _event(
        type_,
        organization_id=_required_str("organization_id", organization_id),
        widget_id=_required_str("widget_id", widget_id),
        error=_text("error", error),
        url=_text("url", url),
        source=_text("source", source),
    )


class WidgetEvents(_Group):
    __slots__ = ()

    @_reported
    def loaded(
        self, organization_id: str, widget_id: str, duration_ms: float, url: str | None = None
    ) -> Event:
        """A widget finished loading (``widget.loaded``)."""
        return _event(
            "widget.loaded",
            organization_id=_required_str("organization_id", organization_id),
            widget_id=_required_str("widget_id", widget_id),
            duration_ms=_number("duration_ms", duration_ms, required=True),
            url=_text("url", url),
        )

    @_reported
    def load_error(
        self,
        organization_id: str,
        widget_id: str,
        error: str | BaseException | None = None,
        url: str | None = None,
        source: str | None = None,
    ) -> Event:
        return _widget_error("widget.load_error", organization_id, widget_id, error, url, source)

    @_reported
    def render_error(
        self,
        organization_id: str,
        widget_id: str,
        error: str | BaseException | None = None,
        url: str | None = None,
        source: str | None = None,
    ) -> Event:
        return _widget_error("widget.render_error", organization_id, widget_id, error, url, source)

    @_reported
    def script_error(
        self,
        organization_id: str,
        widget_id: str,
        error: str | BaseException | None = None,
        url: str | None = None,
        source: str | None = None,
    ) -> Event:
        return _widget_error("widget.script_error", organization_id, widget_id, error, url, source)


class TrafficEvents(_Group):
    __slots__ = ()

    @_reported
    def request(
        self,
        organization_id: str,
        path: str | None = None,
        country: str | None = None,
        user_agent: str | None = None,
        ip: str | None = None,
    ) -> Event:
        """A visitor request to an organization's pages (``traffic.request``)."""
        return _event(
            "traffic.request",
            organization_id=_required_str("organization_id", organization_id),
            path=_text("path", path),
            country=_text("country", country),
            user_agent=_text("user_agent", user_agent),
            ip=_text("ip", ip),
        )


class DashboardEvents(_Group):
    __slots__ = ()

    @_reported
    def endpoint(self, route: str, duration_ms: float, status: int, method: str = "GET") -> Event:
        """One served request (``endpoint.request``); ``route`` should be the route template.

        Templates are reported in one form whatever the framework: ``{id}`` and ``[id]`` as
        ``:id``, catch-alls as ``*`` (see ``passiton_monitoring_client.routes``).
        """
        return _event(
            "endpoint.request",
            route=normalize_route(_required_str("route", route))[:MAX_TEXT],
            method=_required_str("method", method).upper(),
            status=_status(status),
            duration_ms=_number("duration_ms", duration_ms, required=True),
        )

    @_reported
    def auth_failure(
        self, reason: str, organization_id: str | None = None, ip: str | None = None
    ) -> Event:
        """An authentication attempt failed (``auth.failed``)."""
        if organization_id is not None:
            _required_str("organization_id", organization_id)
        return _event(
            "auth.failed",
            reason=_required_str("reason", reason)[:MAX_TEXT],
            organization_id=organization_id,
            ip=_text("ip", ip),
        )

    @_reported
    def database_error(self, operation: str, error: str | BaseException | None = None) -> Event:
        """A database operation failed (``database.error``)."""
        return _event(
            "database.error",
            operation=_required_str("operation", operation)[:MAX_TEXT],
            error=_text("error", error),
        )
