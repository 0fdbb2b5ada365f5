"""The on-call page and its overrides.

Per schedule: who is on call now (overrides applied, and named), until when, who is next; a
week's calendar (7 days by schedules, each row on its schedule's own clock: a day across a DST
change is 23 or 25 hours wide, a block per shift, overrides marked, today and now marked); the
escalation policies and the routes to them; each schedule's and person's iCalendar feed
(admins of every organization, with ``BRIDGE_PUBLIC_URL``). Responders add overrides (take a
shift from the calendar, cover for a time, be on call in addition, swap) and remove them; each
is checked against the on-call file (``oncall_forms.py``) and stored with its audit entry in
one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from bridge.oncall.config import OncallConfig, Schedule
from bridge.oncall.schedule import (
    Override,
    Shift,
    current_shifts,
    first_handoff,
    next_handoff,
    shifts,
)
from console.common import (
    PREFIX,
    _audit,
    _back,
    _console,
    _form,
    _row_id,
    _visitor,
    render,
    require,
)
from console.forms import FormError
from console.oncall_forms import MAX_SPAN, parse_override

WEEK = timedelta(days=7)
# the overrides read around the week shown and now: enough for "next" and the week's shifts
_BEFORE, _AFTER = MAX_SPAN + WEEK, timedelta(days=60)


@dataclass(frozen=True)
class Block:
    """A shift in a row of the calendar (``left``/``width`` in % of the row's week)."""

    shift: Shift
    label: str  # who, and the override's part
    when: str  # its whole extent on the schedule's clock
    hours: float
    left: float
    width: float
    lane: int
    take: str  # the query that prefills "take this shift"


@dataclass(frozen=True)
class Day:
    day: date
    left: float
    width: float
    today: bool
    hours: float


@dataclass(frozen=True)
class Row:
    schedule: Schedule
    days: list[Day]
    blocks: list[Block]
    lanes: int
    now_at: float | None


@dataclass(frozen=True)
class Current:
    schedule: Schedule
    now: list[tuple[Shift, str]]
    next: tuple[Shift, str] | None
    starts: datetime | None  # the rotation's first hand-off, while it is ahead


def local(at: datetime, zone: ZoneInfo, fmt: str = "%a %d %b %H:%M %Z") -> str:
    return at.astimezone(zone).strftime(fmt)


def _field(at: datetime, zone: ZoneInfo) -> str:
    """A datetime-local field's value on the schedule's clock."""
    return at.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def who(config: OncallConfig, shift: Shift, by_id: dict[int, Override]) -> str:
    person = config.people.get(shift.person_id)
    name = person.name if person else shift.person_id
    override = by_id.get(shift.override_id) if shift.override_id is not None else None
    if shift.override_id is None:
        return name
    if override is not None and override.replaces:
        other = config.people.get(override.replaces)
        text = f"{name}, covering {other.name if other else override.replaces}"
    else:
        text = f"{name}, in addition"
    text += f" (override #{shift.override_id}"
    return text + (f": {override.reason})" if override and override.reason else ")")


def week_of(text: str, today: date) -> date:
    """The Monday of ``?week=`` (any day of it), or of today's week; ValueError if not a date."""
    day = date.fromisoformat(text) if text else today
    if not 2000 <= day.year <= 2200:
        raise ValueError("out of range")
    return day - timedelta(days=day.weekday())


def _lanes(found: list[Shift]) -> tuple[list[int], int]:
    """Each shift's lane, so that no two overlapping shifts share one (in start order)."""
    ends: list[datetime] = []
    lanes = []
    for shift in found:
        lane = next((i for i, end in enumerate(ends) if end <= shift.start), len(ends))
        if lane == len(ends):
            ends.append(shift.end)
        else:
            ends[lane] = shift.end
        lanes.append(lane)
    return lanes, max(len(ends), 1)


def week_row(
    config: OncallConfig,
    schedule: Schedule,
    monday: date,
    now: datetime,
    overrides: list[Override],
    week: str,
) -> Row:
    zone = schedule.time_zone

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)

    start, end = midnight(monday), midnight(monday + WEEK)
    total = (end - start).total_seconds()

    def pct(at: datetime) -> float:
        return round(100 * (min(max(at, start), end) - start).total_seconds() / total, 3)

    today = now.astimezone(zone).date()
    days = []
    for i in range(7):
        day = monday + timedelta(days=i)
        lo, hi = midnight(day), midnight(day + timedelta(days=1))
        hours = (hi - lo).total_seconds() / 3600
        days.append(Day(day, pct(lo), round(pct(hi) - pct(lo), 3), day == today, hours))
    found = shifts(config, schedule.id, start, end, overrides)
    lanes, count = _lanes(found)
    by_id = {o.id: o for o in overrides}
    blocks = []
    for shift, lane in zip(found, lanes, strict=True):
        take = urlencode(
            {
                "week": week,
                "schedule": schedule.id,
                "replaces": shift.person_id,
                "start": _field(max(shift.start, now), zone),
                "end": _field(shift.end, zone),
            }
        )
        blocks.append(
            Block(
                shift,
                who(config, shift, by_id),
                f"{local(shift.start, zone)} to {local(shift.end, zone)}",
                round((shift.end - shift.start).total_seconds() / 3600, 2),
                pct(shift.start),
                round(pct(shift.end) - pct(shift.start), 3),
                lane,
                take,
            )
        )
    now_at = pct(now) if start <= now < end else None
    return Row(schedule, days, blocks, count, now_at)


def current(
    config: OncallConfig, schedule: Schedule, now: datetime, overrides: list[Override]
) -> Current:
    by_id = {o.id: o for o in overrides}
    found = current_shifts(config, schedule.id, now, overrides)
    holding = [(s, who(config, s, by_id)) for s in found]
    following = next_handoff(config, schedule.id, now, overrides)
    first = first_handoff(config, schedule.id)
    return Current(
        schedule,
        holding,
        (following, who(config, following, by_id)) if following else None,
        first if now < first else None,
    )


def policies(config: OncallConfig) -> list[dict[str, Any]]:
    """Each policy, its steps in words, and the routes that lead to it."""
    found = []
    for policy in config.policies.values():
        routes = [
            ", ".join(str(m) for m in r.matchers) or "every incident"
            for r in config.routes
            if r.policy == policy.id
        ]
        steps = []
        for step in policy.steps:
            targets = []
            for target in step.notify:
                kind, _, ident = target.partition(":")
                if kind == "person" and ident in config.people:
                    targets.append(config.people[ident].name)
                else:
                    targets.append(f"whoever is on call on {ident}")
            steps.append({"after": step.after, "notify": targets, "via": step.via})
        found.append({"policy": policy, "routes": routes, "steps": steps})
    return found


async def oncall_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    config = console.host.oncall()
    if config is None:
        return render(request, "oncall.html", config=None)
    now = console.now()
    try:
        monday = week_of(request.query.get("week", "").strip(), now.date())
    except ValueError:
        raise web.HTTPBadRequest(text="week: expected a date like 2026-12-07") from None
    week = monday.isoformat()
    lo = min(now, datetime.combine(monday, time(0), tzinfo=UTC)) - _BEFORE
    hi = max(now, datetime.combine(monday + WEEK, time(0), tzinfo=UTC)) + _AFTER
    overrides = await console.store.oncall_overrides(lo, hi)
    user = _visitor(request).user
    assert user is not None
    feeds: dict[str, dict[str, str]] = {}
    if user.role == "admin" and user.organizations is None:  # not an organization admin's
        feeds = {
            "schedule": {s: console.host.calendar_url("schedule", s) for s in config.schedules},
            "person": {p: console.host.calendar_url("person", p) for p in config.people},
        }
    zones = {s.id: s.time_zone for s in config.schedules.values()}
    listed = sorted(
        (o for o in overrides if o.end > min(now, lo + _BEFORE)), key=lambda o: (o.start, o.id)
    )
    prefill = {k: request.query.get(k, "") for k in ("schedule", "replaces", "start", "end")}
    if not prefill["start"] and not prefill["end"]:
        zone = zones.get(prefill["schedule"]) or next(iter(zones.values()), UTC)
        prefill["start"] = _field(now, zone)
        prefill["end"] = _field(now + timedelta(hours=8), zone)
    return render(
        request,
        "oncall.html",
        config=config,
        week=week,
        previous=(monday - WEEK).isoformat(),
        following=(monday + WEEK).isoformat(),
        this_week=week_of("", now.date()).isoformat(),
        current=[current(config, s, now, overrides) for s in config.schedules.values()],
        rows=[week_row(config, s, monday, now, overrides, week) for s in config.schedules.values()],
        overrides=listed,
        zones=zones,
        policies=policies(config),
        feeds=feeds,
        prefill=prefill,
        me=user.username if user.username in config.people else "",
        local=local,
        notice=request.query.get("notice", ""),
    )


def _back_to(form: dict[str, str]) -> str:
    week = form.get("week", "")
    try:
        date.fromisoformat(week)
    except ValueError:
        return f"{PREFIX}/oncall"
    return f"{PREFIX}/oncall?{urlencode({'week': week})}"


@require("responder")
async def add_override(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    config = console.host.oncall()
    if config is None:
        return render(
            request, "problem.html", status=409, message="ONCALL_CONFIG is not set: no schedules."
        )
    form = await _form(request)
    try:
        rows, detail = parse_override(config, form, console.now())
    except FormError as exc:
        return render(
            request, "problem.html", status=400, message="Not saved.", problems=exc.problems
        )
    user = _visitor(request).user
    assert user is not None
    action = "swapped on-call shifts" if len(rows) == 2 else "added on-call override"
    made = await console.store.add_overrides(
        rows, f"console:{user.username}", _audit(request, action, **detail)
    )
    names = ", ".join(f"#{o.id}" for o in made)
    raise _back(_back_to(form), f"override{'s' * (len(made) > 1)} {names} saved")


@require("responder")
async def remove_override(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    ident = _row_id(request.match_info["id"])
    form = await _form(request)
    removed = await console.store.remove_override(
        ident, _audit(request, "removed on-call override")
    )
    if removed is None:
        raise web.HTTPNotFound(text="no such override")
    raise _back(_back_to(form), f"override #{ident} removed")
