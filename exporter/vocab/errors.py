"""Error classes of free-text error messages."""

from __future__ import annotations

import re

from exporter.vocab.common import UNKNOWN, classify_text

ERROR_CLASSES = (
    "timeout",
    "network",
    "signature",
    "database",
    "validation",
    "not_found",
    "permission",
    "rate_limited",
    "server_error",
    UNKNOWN,
)

_TEXT_ERROR_CLASS = (
    (re.compile(r"time[d ]?out|timeout|deadline", re.I), "timeout"),
    (re.compile(r"signature|hmac", re.I), "signature"),
    (re.compile(r"database|sql|postgres|supabase|deadlock|relation .* does not", re.I), "database"),
    (re.compile(r"rate.?limit|too many requests|\b429\b", re.I), "rate_limited"),
    (re.compile(r"not found|\b404\b|no such", re.I), "not_found"),
    (re.compile(r"forbidden|unauthori[sz]ed|permission|denied|\b40[13]\b", re.I), "permission"),
    (
        re.compile(r"network|connection|econn|socket|dns|fetch failed|failed to fetch", re.I),
        "network",
    ),
    (re.compile(r"invalid|validation|missing|required|malformed|syntax|parse", re.I), "validation"),
    (re.compile(r"\b50[0-9]\b|internal server|bad gateway|unavailable", re.I), "server_error"),
)


def error_class(error: str | None) -> str:
    """Classify a free-text error message into one of ERROR_CLASSES."""
    if not error:
        return UNKNOWN
    return classify_text(error[:512], _TEXT_ERROR_CLASS)
