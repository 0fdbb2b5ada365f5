"""Currencies: ISO 4217 codes, and minor units to major units as Stripe counts them."""

from __future__ import annotations

import pycountry

from exporter.vocab.common import OTHER, UNKNOWN

CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
# Stripe's zero-decimal and three-decimal currencies (https://docs.stripe.com/currencies).
_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def currency_label(currency: str | None) -> str:
    if not currency:
        return UNKNOWN
    code = currency.strip().upper()
    return code if code in CURRENCIES else OTHER


def minor_per_major(currency: str) -> float:
    """How many minor units (as Stripe counts them) make one major unit of ``currency``."""
    if currency in _ZERO_DECIMAL:
        return 1.0
    if currency in _THREE_DECIMAL:
        return 1000.0
    return 100.0


def major_units(amount_minor: int, currency: str) -> float:
    """Convert an amount in minor units (as Stripe sends it) to major units of its currency."""
    return amount_minor / minor_per_major(currency)
