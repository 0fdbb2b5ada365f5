"""SQLite's time columns: ISO-8601 UTC text with microseconds, which sorts correctly."""

from __future__ import annotations

from datetime import UTC, datetime, time

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime(_FORMAT)


def parse_ts(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.strptime(value, _FORMAT).replace(tzinfo=UTC)


def _time(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None
