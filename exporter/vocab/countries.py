"""Countries: ISO 3166-1 alpha-2 codes."""

from __future__ import annotations

import pycountry

from exporter.vocab.common import OTHER, UNKNOWN

COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)


def country_label(country: str | None) -> str:
    if not country:
        return UNKNOWN
    code = country.strip().upper()
    return code if code in COUNTRIES else OTHER
