"""Redaction of secrets, card numbers and e-mail addresses in alert labels and annotations.

Applied by the bridge before an alert is stored and again before anything is transmitted, so a
rule that copies an error message or a URL into an annotation cannot leak credentials or
cardholder data into Slack, e-mail, SMS, PagerDuty or the alert tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

REDACTED = "[REDACTED]"
REDACTED_CARD = "[REDACTED-CARD]"
REDACTED_EMAIL = "[REDACTED-EMAIL]"

# Every pattern here sees text from outside (alert labels and annotations), so every one runs in
# linear time: a match may only start where a run of its characters starts (a lookbehind, not
# ``\b``, which lets "a-a-a-..." start a scan at every hyphen), and runs are taken possessively
# (``*+``, ``++``: no backtracking into them). benchmarks/bridge_sanitize.py measures it.

# scheme://user:password@host -> keep the user, drop the password.
_URL_PASSWORD = re.compile(
    r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*+://[^\s:/?#@]*+):([^\s/?#@]++)@"
)

_AUTH_SCHEME = re.compile(
    r"(?i)\b(bearer|authorization:\s*basic|authorization:\s*token)(\s+)[A-Za-z0-9._~+/\-]{8,}=*"
)

_KEY_PATTERNS = [
    # Stripe secret and restricted keys, webhook signing secrets.
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"),
    re.compile(r"\brk_[A-Za-z0-9_]{16,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9]{16,}"),
    # Slack tokens and incoming-webhook paths.
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{8,}"),
    re.compile(r"(?i)\bhooks\.slack\.com/services/[A-Za-z0-9/_\-]+"),
    # AWS access key ids.
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    # GitHub tokens.
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}"),
    # Google API keys.
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),
    # JSON Web Tokens (Supabase keys are JWTs).
    re.compile(
        r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}+\.eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]++"
    ),
]

_SECRET_NAMES = (
    r"password|passwd|pwd|secret|token|api[_\-]?key|apikey|private[_\-]?key|credentials?"  # noqa: S105
)
# password=..., token: ..., ?api_key=... in URLs and free text alike; client_secret=... too (the
# name may end a longer one after "_" or "-"; only the value is replaced).
_KEY_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9])({_SECRET_NAMES})(\s*+[=:]\s*+)"
    r"(\"[^\"]*+\"|'[^']*+'|[^\s&#,;\"'<>]++)"
)
_SECRET_KEY = re.compile(
    rf"(?i)(?:^|[_\-.])(?:{_SECRET_NAMES}|auth|authorization|cookie|signature)$"
)

# 13-19 digits, single spaces or dashes allowed between them, not part of a longer digit run.
_CARD = re.compile(r"(?<![\d])(?:\d[ \-]?){12,18}\d(?![\d])")

_EMAIL = re.compile(
    r"(?i)(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}"
)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ \-]", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return REDACTED_CARD
    return match.group(0)


def _key_value(match: re.Match[str]) -> str:
    value = match.group(3)
    if value == REDACTED or value.startswith("[REDACTED"):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


# Every pattern above needs one of these (in lower case) somewhere in the text, or a run of 13
# digits, spaces and dashes; most label values (names, ids, hosts, sentences, URLs without
# credentials) have none and skip the full scan. Substring tests beat one big regex here.
_TRIGGERS = (
    "@",
    "_live_",
    "_test_",
    "rk_",
    "whsec_",
    "xox",
    "akia",
    "asia",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "aiza",
    "eyj",
    "bearer",
    "authorization",
    "hooks.slack",
    "passw",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "private",
    "credential",
)
_DIGIT_RUN = re.compile(r"\d[\d \-]{12,}")


def _may_need_redaction(text: str) -> bool:
    lowered = text.lower()
    return any(t in lowered for t in _TRIGGERS) or _DIGIT_RUN.search(text) is not None


# Label values repeat (names, ids, hosts): short ones are cached. Long ones (descriptions, up to
# 16 KiB) are not, so unique long values cannot fill memory (8192 x 16 KiB).
CACHED_LENGTH = 512


def redact(text: str) -> str:
    """``text`` with secrets, Luhn-valid card numbers and e-mail addresses replaced."""
    if len(text) <= CACHED_LENGTH:
        return _redact_cached(text)
    return _redact_all(text) if _may_need_redaction(text) else text


@lru_cache(maxsize=8192)
def _redact_cached(text: str) -> str:
    if not text or not _may_need_redaction(text):
        return text
    return _redact_all(text)


def _redact_all(text: str) -> str:
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _KEY_VALUE.sub(_key_value, text)
    text = _CARD.sub(_card, text)
    text = _EMAIL.sub(REDACTED_EMAIL, text)
    return text


@lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def redact_mapping(m: Mapping[str, str]) -> dict[str, str]:
    """Labels or annotations with every value redacted; values of secret-named keys dropped."""
    out: dict[str, str] = {}
    for key, value in m.items():
        if value and _is_secret_key(key):
            out[key] = REDACTED
        else:
            out[key] = redact(value)
    return out
