"""JSON lines on stderr, the same for both services and the one-shot commands; no secret in them.

Every record passes ``RedactSecrets`` on its way out: aiohttp, refusing a request head with a
bare LF or a control character, logs the offending bytes (the whole head: ``Authorization`` and
``Cookie`` included) in its exception; a driver error can carry a URL with a password. The filter
redacts, in the message, every extra field and the formatted exception: the values of
``Authorization``, ``Proxy-Authorization``, ``Cookie`` and ``Set-Cookie`` header lines, bearer and
basic credentials, the console's session cookie, and passwords in URLs. The patterns are linear
(no nested quantifiers), so a hostile head cannot make logging slow.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable

from pythonjsonlogger.json import JsonFormatter

REDACTED = "[REDACTED]"

# A header value runs to the end of its line: a real CR/LF, a quote, or the escapes \r, \n of a
# repr()'d bytes object (aiohttp logs the head that way); other escapes (\x01) are part of it.
_VALUE = r"(?:[^\r\n'\"\\]|\\(?![rn]))*+"
_PATTERNS = (
    re.compile(
        rf"(?i)((?:proxy-)?authorization|(?:set-)?cookie|x-api-key|x-auth-token)(\s*[:=]\s*){_VALUE}"
    ),
    re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]++"),
    re.compile(r"(__Host-passiton_console|passiton_console)(=)[^;\s'\"\\]++"),
    re.compile(r"(?i)((?<![a-z0-9+.-])[a-z][a-z0-9+.-]*+://[^\s:/@'\"]*+)(:)[^\s@/'\"]++(?=@)"),
)


def redact_secrets(text: str) -> str:
    """``text`` with credentials (see the module's docstring) replaced by ``[REDACTED]``."""
    lowered = text.lower()
    if not any(word in lowered for word in _TRIGGERS):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text


_TRIGGERS = ("authorization", "cookie", "bearer", "basic", "token", "passiton_console", "@", "key")
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RedactSecrets(logging.Filter):
    """Redacts credentials in a record before any handler formats it (attach it to handlers: a
    logger's filters do not see its children's records)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_secrets(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            # formatted now and kept as text: every formatter prints exc_text when exc_info is gone
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                record.__dict__[key] = redact_secrets(value)
            elif key not in _STANDARD and isinstance(value, (list, tuple, dict)):
                record.__dict__[key] = _redact_value(value)
        return True


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    return value


class RateLimitRepeats(logging.Filter):
    """At most ``burst`` records per (logger, level, message template) in ``window`` seconds; the
    rest are dropped and counted, and the first record let through after a drop carries
    ``suppressed`` (how many were dropped). A flood of malformed requests, each logging the same
    error, can no longer fill the disk or drown the other records. At most ``keys`` templates
    are tracked (least recent dropped first)."""

    def __init__(
        self,
        burst: int = 20,
        window: float = 60.0,
        keys: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst, self.window, self.keys, self.clock = burst, window, keys, clock
        self._seen: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()
        self.suppressed_total = 0

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = self.clock()
        started, count, dropped = self._seen.pop(key, [now, 0, 0])
        if now - started >= self.window:
            started, count = now, 0
        self._seen[key] = [started, count + 1, dropped]
        while len(self._seen) > self.keys:
            self._seen.popitem(last=False)
        if count >= self.burst:
            self._seen[key][2] += 1
            self.suppressed_total += 1
            return False
        if dropped:
            record.suppressed = int(dropped)
            self._seen[key][2] = 0
        return True


def setup_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as one JSON object per line, repeats rate-limited,
    secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"}
        )
    )
    handler.addFilter(RateLimitRepeats())  # first: it groups by the message's template
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
