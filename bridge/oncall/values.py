"""The small values of the on-call file, parsed from text: durations (``90s``, ``5m``,
``1h30m``), hand-off times (``09:00``, ``monday 09:00``), dates, time zones (IANA names),
E.164 phone numbers and ids. Each parser raises ``ValueError`` saying what it expected."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:s|m|h|d))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(s|m|h|d)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_E164 = re.compile(r"\+[1-9]\d{1,14}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``5m``, ``1h``, ``1h30m``, ``2d``; ``0`` is zero; never negative."""
    value = text.strip()
    if value == "0":
        return timedelta(0)
    if value.startswith("-"):
        raise ValueError(f"a duration cannot be negative, got {text!r}")
    if not _DURATION.fullmatch(value):
        raise ValueError(f"expected a duration like 90s, 5m, 1h or 1h30m, got {text!r}")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_clock(text: str) -> time:
    """``09:00`` (24-hour ``HH:MM``)."""
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'expected a time of day "HH:MM" (24-hour), got {text!r}')
    return time(int(match.group(1)), int(match.group(2)))


def parse_weekly(text: str) -> tuple[int, time]:
    """``monday 09:00`` (or ``mon 09:00``) -> (0, 09:00); weekdays count from Monday = 0."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f'expected "WEEKDAY HH:MM" such as "monday 09:00", got {text!r}')
    day = parts[0].lower()
    matches = [i for i, name in enumerate(WEEKDAYS) if day in (name, name[:3])]
    if not matches:
        raise ValueError(f"unknown weekday {parts[0]!r} (monday ... sunday)")
    try:
        return matches[0], parse_clock(parts[1])
    except ValueError:
        raise ValueError(f'expected "WEEKDAY HH:MM" such as "monday 09:00", got {text!r}') from None


def parse_date(text: str) -> date:
    value = text.strip()
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, got {text!r}") from None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_zone(text: str) -> ZoneInfo:
    """An IANA time zone name such as ``Europe/Berlin`` (or ``UTC``)."""
    name = text.strip()
    if name not in _zones():
        raise ValueError(f"unknown time zone {text!r} (an IANA name such as Europe/Berlin)")
    return ZoneInfo(name)


def is_e164(number: str) -> bool:
    return _E164.fullmatch(number) is not None


def normalize_phone(number: str) -> str:
    """What a caller's number looks like in E.164: separators dropped, ``00`` -> ``+``."""
    value = _PHONE_SEPARATORS.sub("", number.strip())
    return "+" + value[2:] if value.startswith("00") else value


def check_id(text: str) -> str:
    if not _ID.fullmatch(text):
        raise ValueError(
            f"invalid id {text!r}: 1-64 letters, digits, '_', '.' or '-', starting with a"
            " letter or digit"
        )
    return text
