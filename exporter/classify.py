"""Free text in, bounded label values out: the public names of every vocabulary of
``exporter.vocab`` in one namespace (decline codes, failure and error classes, client classes,
countries, currencies, HTTP methods and statuses, route templates, tokens)."""

from __future__ import annotations

from exporter.vocab.clients import USER_AGENT_MAX, ClientClassifier, client_class
from exporter.vocab.common import OTHER, UNKNOWN
from exporter.vocab.countries import COUNTRIES, country_label
from exporter.vocab.currencies import CURRENCIES, currency_label, major_units, minor_per_major
from exporter.vocab.decline_codes import STRIPE_DECLINE_CODES, decline_code_label
from exporter.vocab.errors import ERROR_CLASSES, error_class
from exporter.vocab.failures import (
    CARD_FAILURE_CLASSES,
    FAILURE_CLASSES,
    PROCESSING_FAILURE_CLASSES,
    failure_class,
)
from exporter.vocab.http import HTTP_METHODS, method_label, status_class
from exporter.vocab.routes import ROUTE_MAX, route_template
from exporter.vocab.tokens import token_label

__all__ = [
    "CARD_FAILURE_CLASSES",
    "COUNTRIES",
    "CURRENCIES",
    "ERROR_CLASSES",
    "FAILURE_CLASSES",
    "HTTP_METHODS",
    "OTHER",
    "PROCESSING_FAILURE_CLASSES",
    "ROUTE_MAX",
    "STRIPE_DECLINE_CODES",
    "UNKNOWN",
    "USER_AGENT_MAX",
    "ClientClassifier",
    "client_class",
    "country_label",
    "currency_label",
    "decline_code_label",
    "error_class",
    "failure_class",
    "major_units",
    "method_label",
    "minor_per_major",
    "route_template",
    "status_class",
    "token_label",
]
