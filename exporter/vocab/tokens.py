"""Identifier-like values (``invalid_token``, ``insert``) normalised; free text refused."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


def token_label(value: str) -> str | None:
    """An identifier-like value (`invalid_token`, `insert`) normalised; None for free text."""
    token = value.strip().lower()
    return token if _TOKEN.match(token) else None
