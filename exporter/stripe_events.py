"""Stripe's own webhook events: signature verification, deduplication, payment outcomes."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import stripe

# Counting rules, so one payment is counted once whatever events the endpoint subscribes to:
# PaymentIntent events always count; Charge and Invoice events only when no PaymentIntent
# stands behind them (legacy charges, older invoices), since Stripe also sends the
# PaymentIntent event for those.
FAILED_TYPES = frozenset(
    {"payment_intent.payment_failed", "charge.failed", "invoice.payment_failed"}
)
SUCCEEDED_TYPES = frozenset(
    {"payment_intent.succeeded", "charge.succeeded", "invoice.payment_succeeded", "invoice.paid"}
)


class SignatureFailure(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def verify(payload: bytes, header: str | None, secret: str, tolerance: int = 300) -> dict[str, Any]:
    """Verify the Stripe-Signature header with the official library; return the event."""
    if not header:
        raise SignatureFailure("missing_header", "Stripe-Signature header is missing")
    try:
        stripe.WebhookSignature.verify_header(payload.decode(), header, secret, tolerance)
        event = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        text = str(exc.user_message or exc)
        if "Timestamp outside the tolerance zone" in text:
            reason = "timestamp_outside_tolerance"
        elif "Unable to extract timestamp" in text:
            reason = "malformed_header"
        else:
            reason = "no_matching_signature"
        raise SignatureFailure(reason, text) from None
    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
        raise SignatureFailure("invalid_payload", "payload is not a valid Stripe event") from None
    if not isinstance(event, dict):
        raise SignatureFailure("invalid_payload", "payload is not a Stripe event object")
    return event


class SeenIds:
    """The most recent ``limit`` event ids, to ignore Stripe's redeliveries in bounded memory."""

    def __init__(self, limit: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, event_id: str) -> bool:
        """Remember the id; False when it was already seen."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True


@dataclass(frozen=True)
class PaymentOutcome:
    organization_id: str
    outcome: str  # "succeeded" | "failed"
    amount: int | None = None
    currency: str | None = None
    decline_code: str | None = None
    failure_code: str | None = None
    error: str | None = None
    # the PaymentIntent (or charge, or invoice) that failed: Stripe's retries of it count once
    payment_id: str | None = None


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _str(value: Any, limit: int = 512) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def payment_outcome(event: dict[str, Any]) -> PaymentOutcome | None:
    """The payment outcome an event reports; None if it reports none or is counted elsewhere."""
    event_type = str(event.get("type", ""))
    obj = _get(event, "data", "object")
    if obj is None:
        return None
    if event_type.startswith(("charge.", "invoice.")) and _get(obj, "payment_intent"):
        return None
    if event_type not in FAILED_TYPES and event_type not in SUCCEEDED_TYPES:
        return None
    organization_id = str(
        _get(obj, "metadata", "organization_id") or event.get("account") or "unknown"
    )[:128]
    amount = (
        _get(obj, "amount") if not event_type.startswith("invoice.") else _get(obj, "amount_due")
    )
    currency = _get(obj, "currency")
    amount = amount if isinstance(amount, int) and amount >= 0 else None
    currency = currency if isinstance(currency, str) and len(currency) == 3 else None
    if event_type in SUCCEEDED_TYPES:
        return PaymentOutcome(organization_id, "succeeded", amount, currency)
    if event_type == "payment_intent.payment_failed":
        error = _get(obj, "last_payment_error")
        return PaymentOutcome(
            organization_id,
            "failed",
            amount,
            currency,
            decline_code=_str(_get(error, "decline_code")),
            failure_code=_str(_get(error, "code")),
            error=_str(_get(error, "message")),
            payment_id=_str(_get(obj, "id"), 128),
        )
    if event_type == "charge.failed":
        outcome = _get(obj, "outcome")
        issuer_declined = _get(outcome, "type") == "issuer_declined"
        return PaymentOutcome(
            organization_id,
            "failed",
            amount,
            currency,
            decline_code=_str(_get(outcome, "reason")) if issuer_declined else None,
            failure_code=_str(_get(obj, "failure_code")),
            error=_str(_get(obj, "failure_message")),
            payment_id=_str(_get(obj, "id"), 128),
        )
    # an invoice's failed payment: Stripe's retries of the invoice are one payment
    return PaymentOutcome(
        organization_id, "failed", amount, currency, payment_id=_str(_get(obj, "id"), 128)
    )
