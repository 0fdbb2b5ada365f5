"""Stripe decline codes: the documented ones kept, anything else ``other``; their failure
classes."""

from __future__ import annotations

from exporter.vocab.common import OTHER

# Stripe's documented decline codes (https://docs.stripe.com/declines/codes).
STRIPE_DECLINE_CODES = frozenset(
    [
        "authentication_required",
        "approve_with_id",
        "call_issuer",
        "card_not_supported",
        "card_velocity_exceeded",
        "currency_not_supported",
        "do_not_honor",
        "do_not_try_again",
        "duplicate_transaction",
        "expired_card",
        "fraudulent",
        "generic_decline",
        "incorrect_number",
        "incorrect_cvc",
        "incorrect_pin",
        "incorrect_zip",
        "insufficient_funds",
        "invalid_account",
        "invalid_amount",
        "invalid_cvc",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "invalid_number",
        "invalid_pin",
        "issuer_not_available",
        "lost_card",
        "merchant_blacklist",
        "new_account_information_available",
        "no_action_taken",
        "not_permitted",
        "offline_pin_required",
        "online_or_offline_pin_required",
        "pickup_card",
        "pin_try_exceeded",
        "processing_error",
        "reenter_transaction",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "service_not_allowed",
        "stolen_card",
        "stop_payment_order",
        "testmode_decline",
        "transaction_not_allowed",
        "try_again_later",
        "withdrawal_count_limit_exceeded",
    ]
)

DECLINE_CLASS = {
    **dict.fromkeys(
        [
            "fraudulent",
            "stolen_card",
            "lost_card",
            "pickup_card",
            "merchant_blacklist",
            "security_violation",
            "restricted_card",
        ],
        "fraud",
    ),
    **dict.fromkeys(
        ["insufficient_funds", "card_velocity_exceeded", "withdrawal_count_limit_exceeded"],
        "insufficient_funds",
    ),
    **dict.fromkeys(
        ["authentication_required", "offline_pin_required", "online_or_offline_pin_required"],
        "authentication_required",
    ),
    **dict.fromkeys(
        [
            "expired_card",
            "incorrect_number",
            "incorrect_cvc",
            "invalid_cvc",
            "invalid_number",
            "invalid_expiry_month",
            "invalid_expiry_year",
            "incorrect_zip",
            "incorrect_pin",
            "invalid_pin",
            "pin_try_exceeded",
        ],
        "invalid_card",
    ),
    **dict.fromkeys(
        ["processing_error", "issuer_not_available", "try_again_later", "reenter_transaction"],
        "processing_error",
    ),
}


def decline_code_label(decline_code: str | None) -> str:
    if not decline_code:
        return "none"
    code = decline_code.strip().lower()
    return code if code in STRIPE_DECLINE_CODES else OTHER
