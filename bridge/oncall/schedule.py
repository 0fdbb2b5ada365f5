"""Who is on call when: a schedule's rotation in time, with overrides on top. Pure functions;
datetimes are aware (UTC in and out).

A rotation hands off at wall-clock times in the schedule's zone:

- ``daily``: every day at ``handoff`` (``09:00``); ``weekly``: every week on ``handoff``'s
  weekday (``monday 09:00``); ``hours``: every ``shift_hours`` hours counted on the local
  clock from ``handoff`` on ``start`` (``shift_hours: 12, handoff: "08:00"``: 08:00 and 20:00
  every day).
- The first shift is ``people[0]``'s, from the first hand-off on or after ``start`` (a date in
  the schedule's zone); then ``people[1]``, ... round and round. Before that first hand-off
  ``people[0]`` is on call too (its first shift reaches back), so a schedule that starts next
  week already pages someone; its start is then the beginning of whatever window is asked for.
- Across a DST change the hand-off stays at the same local time, so the shift spanning it is an
  hour shorter or longer (23 or 25 hours for daily, 11 or 13 for ``shift_hours: 12``).
- A hand-off at a local time that does not exist (02:30 on a spring-forward day) or exists twice
  (02:30 on a fall-back day) follows ``zoneinfo``'s ``fold=0``: the non-existent time is read
  with the offset from before the change (02:30 CET = 03:30 CEST, Berlin), the repeated one is
  its first occurrence (02:30 CEST). An hourly rotation with two hand-offs at the same instant
  (02:00 and 03:00 on a spring-forward day) has a shift of no length, which is dropped.

Overrides (``Override``, stored in ``oncall_overrides``) apply on top, in id order: one with
``replaces=X`` gives X's time within its span to its person (a cover: no effect while X is not
on call); one without adds its person for the span. A swap is two covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bridge.oncall.config import OncallConfig, Person, Rotation, Schedule

_HORIZON = timedelta(days=400)


@dataclass(frozen=True)
class Override:
    id: int
    schedule_id: str
    person_id: str
    replaces: str | None  # None: person_id is on call in addition; else covers replaces' time
    start: datetime
    end: datetime
    reason: str = ""
    created_by: str = ""
    created_at: datetime | None = None

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Shift:
    schedule_id: str
    person_id: str
    start: datetime
    end: datetime
    override_id: int | None = None  # None: the rotation's own shift


# who holds a slice of time: the rotation's shift k, or override n
_Key = tuple[str, int]


class _Timeline:
    """The hand-offs of one schedule's rotation."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        rotation = schedule.rotation
        self.people = rotation.people
        self.first = datetime.combine(_first_day(rotation), rotation.handoff)
        if rotation.type == "daily":
            self.period = timedelta(days=1)
        elif rotation.type == "weekly":
            self.period = timedelta(days=7)
        else:
            self.period = timedelta(hours=rotation.shift_hours or 24)
        self.start = self.handoff(0)

    def handoff(self, k: int) -> datetime:
        """The k-th hand-off (k = 0 the first), UTC: wall-clock arithmetic, then fold=0."""
        local = self.first + k * self.period  # naive: the local clock
        return local.replace(tzinfo=self.schedule.time_zone, fold=0).astimezone(UTC)

    def index(self, at: datetime) -> int:
        """The rotation shift holding ``at`` (0 before the first hand-off)."""
        if at < self.start:
            return 0
        k = int((at - self.start) / self.period)
        while k > 0 and self.handoff(k) > at:
            k -= 1
        while self.handoff(k + 1) <= at:
            k += 1
        return k

    def person(self, k: int) -> str:
        return self.people[k % len(self.people)]

    def handoffs_between(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Hand-offs strictly after lo and before hi."""
        found = []
        k = self.index(lo) + 1
        while (h := self.handoff(k)) < hi:
            if h > lo:
                found.append(h)
            k += 1
        return found


def _first_day(rotation: Rotation) -> date:
    if rotation.type == "weekly" and rotation.handoff_weekday is not None:
        return rotation.start + timedelta(
            days=(rotation.handoff_weekday - rotation.start.weekday()) % 7
        )
    return rotation.start


def _schedule(config: OncallConfig, schedule_id: str) -> Schedule:
    try:
        return config.schedules[schedule_id]
    except KeyError:
        raise KeyError(f"unknown schedule {schedule_id!r}") from None


def _mine(schedule_id: str, overrides: Sequence[Override]) -> list[Override]:
    return sorted((o for o in overrides if o.schedule_id == schedule_id), key=lambda o: o.id)


def _holders(
    timeline: _Timeline, overrides: Sequence[Override], at: datetime
) -> list[tuple[str, _Key]]:
    """Who is on call at ``at`` and why, in order: the rotation's person, then overrides."""
    k = timeline.index(at)
    holders: list[tuple[str, _Key]] = [(timeline.person(k), ("rotation", k))]
    for o in overrides:
        if not o.active(at):
            continue
        people = [p for p, _ in holders]
        if o.replaces is None:
            if o.person_id not in people:
                holders.append((o.person_id, ("override", o.id)))
        elif o.replaces in people:
            i = people.index(o.replaces)
            if o.person_id in people:
                del holders[i]
            else:
                holders[i] = (o.person_id, ("override", o.id))
    return holders


def first_handoff(config: OncallConfig, schedule_id: str) -> datetime:
    """When the rotation's first shift (``people[0]``'s) begins; before it, that person too."""
    return _Timeline(_schedule(config, schedule_id)).start


def on_call(
    config: OncallConfig, schedule_id: str, at: datetime, overrides: Sequence[Override] = ()
) -> list[str]:
    """The ids of who is on call on the schedule at ``at``."""
    timeline = _Timeline(_schedule(config, schedule_id))
    return [p for p, _ in _holders(timeline, _mine(schedule_id, overrides), at)]


def shifts(
    config: OncallConfig,
    schedule_id: str,
    start: datetime,
    end: datetime,
    overrides: Sequence[Override] = (),
) -> list[Shift]:
    """Every shift overlapping [start, end), with its whole extent (not cut at the window), by
    start time: the rotation's shifts as overrides leave them, and the overrides' own."""
    timeline = _Timeline(_schedule(config, schedule_id))
    mine = _mine(schedule_id, overrides)
    # the window grown to whole rotation shifts, then to the overrides reaching into it
    k = timeline.index(start)
    lo = timeline.handoff(k) if timeline.handoff(k) <= start else start
    hi = max(end, timeline.handoff(timeline.index(end) + 1))
    touching = [o for o in mine if o.start < hi and o.end > lo]
    lo = min([lo, *(o.start for o in touching)])
    hi = max([hi, *(o.end for o in touching)])
    cuts = {lo, hi, *timeline.handoffs_between(lo, hi)}
    cuts.update(t for o in touching for t in (o.start, o.end) if lo < t < hi)
    edges = sorted(cuts)
    found: list[tuple[datetime, int, Shift]] = []
    open_: dict[tuple[str, _Key], datetime] = {}
    order: dict[tuple[str, _Key], int] = {}

    def close(holder: tuple[str, _Key], at: datetime) -> None:
        begun = open_.pop(holder)
        if begun < end and at > start:
            override_id = holder[1][1] if holder[1][0] == "override" else None
            found.append(
                (begun, order[holder], Shift(schedule_id, holder[0], begun, at, override_id))
            )

    for seg_start in edges[:-1]:
        now = _holders(timeline, touching, seg_start)
        for holder in list(open_):
            if holder not in now:
                close(holder, seg_start)
        for i, holder in enumerate(now):
            if holder not in open_:
                open_[holder] = seg_start
                order[holder] = i
    for holder in list(open_):
        close(holder, edges[-1])
    return [shift for _, _, shift in sorted(found, key=lambda f: (f[0], f[1]))]


def current_shifts(
    config: OncallConfig, schedule_id: str, at: datetime, overrides: Sequence[Override] = ()
) -> list[Shift]:
    """The shifts holding ``at``, whole."""
    return [
        s
        for s in shifts(config, schedule_id, at, at + timedelta(microseconds=1), overrides)
        if s.start <= at
    ]


def next_handoff(
    config: OncallConfig, schedule_id: str, at: datetime, overrides: Sequence[Override] = ()
) -> Shift | None:
    """The first shift that begins after ``at`` (who is next, and from when)."""
    span = timedelta(days=8)
    while span <= _HORIZON:
        later = [s for s in shifts(config, schedule_id, at, at + span, overrides) if s.start > at]
        if later:
            return later[0]
        span *= 4
    return None


def resolve_targets(
    config: OncallConfig,
    targets: Sequence[str],
    at: datetime,
    overrides: Sequence[Override] = (),
) -> list[Person]:
    """``schedule:x`` -> who is on call on x at ``at``; ``person:y`` -> y; each person once, in
    order."""
    ids: list[str] = []
    for target in targets:
        kind, _, ident = target.partition(":")
        if kind == "schedule":
            ids.extend(on_call(config, ident, at, overrides))
        elif kind == "person":
            if ident not in config.people:
                raise KeyError(f"unknown person {ident!r}")
            ids.append(ident)
        else:
            raise ValueError(f'not "schedule:ID" or "person:ID": {target!r}')
    return [config.people[i] for i in dict.fromkeys(ids)]
