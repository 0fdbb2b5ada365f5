"""Working hours: the days and the wall-clock span a team counts as work, evaluated on each
person's own clock (their ``time_zone`` in the on-call file); a page outside them woke someone
up or interrupted their evening. ``BRIDGE_CONSOLE_WORKING_HOURS``, e.g. ``mon-fri 09:00-18:00``
(the default) or ``mon,tue,thu 08:30-17:00``; the review counts pages outside them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT = "mon-fri 09:00-18:00"


@dataclass(frozen=True)
class WorkingHours:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # after start (a span within one day)

    def contains(self, at: datetime, zone: ZoneInfo) -> bool:
        """Whether the aware instant falls in working hours on that clock."""
        local = at.astimezone(zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def describe(self) -> str:
        return f"{_days_text(self.days)} {self.start:%H:%M}-{self.end:%H:%M}"


def _days_text(days: frozenset[int]) -> str:
    """Runs of three days or more as ranges: ``mon-wed,fri``."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        f"{DAYS[r[0]]}-{DAYS[r[-1]]}" if len(r) > 2 else ",".join(DAYS[d] for d in r) for r in runs
    )


def parse_working_hours(text: str) -> WorkingHours:
    """``DAYS HH:MM-HH:MM``: DAYS a range (``mon-fri``) or a list (``mon,wed,fri``), or both
    (``mon-wed,fri``); ValueError naming what is wrong."""
    parts = text.strip().lower().split()
    if len(parts) != 2:
        raise ValueError(f"{text!r}: expected DAYS HH:MM-HH:MM, like {DEFAULT!r}")
    days: set[int] = set()
    for item in parts[0].split(","):
        first, _, last = item.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{item!r}: days are {', '.join(DAYS)} (a range like mon-fri)")
        a, b = DAYS.index(first), DAYS.index(last or first)
        if b < a:
            raise ValueError(f"{item!r}: a range runs forward, like mon-fri")
        days.update(range(a, b + 1))
    start_text, _, end_text = parts[1].partition("-")
    try:
        start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    except ValueError:
        raise ValueError(f"{parts[1]!r}: expected HH:MM-HH:MM") from None
    if end <= start:
        raise ValueError(f"{parts[1]!r}: the end must be after the start on the same day")
    return WorkingHours(frozenset(days), start, end)
