"""Failure classes of a payment, from a decline code, a Stripe error code or free text."""

from __future__ import annotations

import re

from exporter.vocab.common import UNKNOWN, classify_text
from exporter.vocab.decline_codes import DECLINE_CLASS, STRIPE_DECLINE_CODES

# Stripe error codes (the `code` of a Stripe error; https://docs.stripe.com/error-codes).
_FAILURE_CODE_CLASS = {
    "card_declined": "card_declined",
    "expired_card": "invalid_card",
    "incorrect_cvc": "invalid_card",
    "incorrect_number": "invalid_card",
    "incorrect_zip": "invalid_card",
    "invalid_cvc": "invalid_card",
    "invalid_expiry_month": "invalid_card",
    "invalid_expiry_year": "invalid_card",
    "invalid_number": "invalid_card",
    "processing_error": "processing_error",
    "authentication_required": "authentication_required",
    "payment_intent_authentication_failure": "authentication_required",
    "card_decline_rate_limit_exceeded": "rate_limited",
    "rate_limit": "rate_limited",
    "api_connection_error": "network",
    "lock_timeout": "processing_error",
    "api_key_expired": "configuration",
    "secret_key_required": "configuration",
    "parameter_missing": "configuration",
    "parameter_invalid_integer": "configuration",
    "amount_too_small": "invalid_amount",
    "amount_too_large": "invalid_amount",
    "balance_insufficient": "insufficient_funds",
}

FAILURE_CLASSES = (
    "card_declined",
    "insufficient_funds",
    "fraud",
    "authentication_required",
    "invalid_card",
    "invalid_amount",
    "processing_error",
    "rate_limited",
    "network",
    "timeout",
    "configuration",
    UNKNOWN,
)

# Failures the card (or its holder) causes: the payment path worked and the issuer said no. They
# neither extend nor break an organization's run of failed payments (the failure streak).
CARD_FAILURE_CLASSES = frozenset(
    [
        "card_declined",
        "insufficient_funds",
        "fraud",
        "authentication_required",
        "invalid_card",
        "invalid_amount",
    ]
)

# The rest: the payment path failed (a platform's or a provider's outage, a configuration).
PROCESSING_FAILURE_CLASSES = tuple(
    cls for cls in FAILURE_CLASSES if cls not in CARD_FAILURE_CLASSES
)

_TEXT_FAILURE_CLASS = (
    (re.compile(r"insufficient|not enough funds", re.I), "insufficient_funds"),
    (re.compile(r"fraud|stolen|lost card", re.I), "fraud"),
    (re.compile(r"authenticat|3d ?secure|\bsca\b", re.I), "authentication_required"),
    (re.compile(r"expired|incorrect|invalid (card|number|cvc|expiry)", re.I), "invalid_card"),
    (re.compile(r"time[d ]?out|timeout", re.I), "timeout"),
    (re.compile(r"rate.?limit|too many requests", re.I), "rate_limited"),
    (re.compile(r"network|connection|econn|socket|dns", re.I), "network"),
    (re.compile(r"declined", re.I), "card_declined"),
    (re.compile(r"processing error|try again", re.I), "processing_error"),
    (re.compile(r"api key|unauthori[sz]ed|permission", re.I), "configuration"),
)


def failure_class(decline_code: str | None, failure_code: str | None, error: str | None) -> str:
    if decline_code:
        code = decline_code.strip().lower()
        if code in STRIPE_DECLINE_CODES:
            return DECLINE_CLASS.get(code, "card_declined")
    if failure_code:
        cls = _FAILURE_CODE_CLASS.get(failure_code.strip().lower())
        if cls:
            return cls
    if error:
        return classify_text(error[:512], _TEXT_FAILURE_CLASS)
    return UNKNOWN
