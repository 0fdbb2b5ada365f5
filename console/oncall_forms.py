"""Validation of the on-call override forms: ids from the on-call file, times in the schedule's
zone, every problem named, nothing stored unless all of it is right."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo

from bridge.oncall.config import OncallConfig
from bridge.storage.console import NewOverride
from console.forms import FormError

MAX_SPAN = timedelta(days=90)  # one override's length
MAX_AHEAD = timedelta(days=366)  # how far ahead one may begin
REASON_MAX = 500
KINDS = ("cover", "swap")


def parse_local(text: str, zone: tzinfo) -> datetime:
    """``2026-10-24T09:00`` (a datetime-local field, read in ``zone``; a time that exists twice
    is its first occurrence) or ISO 8601 with an offset; UTC out. ValueError saying why."""
    value = text.strip()
    if not value:
        raise ValueError("missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a time like 2026-12-07T09:00, got {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone, fold=0)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"out of range: {value[:40]!r}") from None


def _span(
    form: Mapping[str, str],
    names: tuple[str, str],
    zone: tzinfo,
    now: datetime,
    problems: list[str],
) -> tuple[datetime, datetime] | None:
    found: list[datetime] = []
    for name in names:
        try:
            found.append(parse_local(form.get(name, ""), zone))
        except ValueError as exc:
            problems.append(f"{name.replace('_', ' ')}: {exc}")
    if len(found) != 2:
        return None
    start, end = found
    label = names[0].replace("_", " ")
    if end <= start:
        problems.append(f"{names[1].replace('_', ' ')} must be after {label}")
    elif end - start > MAX_SPAN:
        problems.append(f"an override lasts at most {MAX_SPAN.days} days")
    elif end <= now:
        problems.append(f"{names[1].replace('_', ' ')} is in the past: it would change nothing")
    elif start > now + MAX_AHEAD:
        problems.append(f"{label} is more than {MAX_AHEAD.days} days ahead")
    else:
        return start, end
    return None


def _person(config: OncallConfig, form: Mapping[str, str], field: str, problems: list[str]):
    value = form.get(field, "").strip()
    if value not in config.people:
        shown = repr(value[:40]) if value else "none given"
        problems.append(f"{field}: not a person of the on-call file ({shown})")
        return None
    return value


def parse_override(
    config: OncallConfig, form: Mapping[str, str], now: datetime
) -> tuple[list[NewOverride], dict[str, str]]:
    """The overrides a form asks for (one cover, or a swap's two) and the audit's detail.

    ``kind=cover``: ``person`` covers ``replaces``' time in [start, end), or is on call in
    addition when ``replaces`` is empty. ``kind=swap``: ``person`` covers ``other``'s time in
    [start, end) and ``other`` covers ``person``'s in [other_start, other_end)."""
    problems: list[str] = []
    kind = form.get("kind", "")
    if kind not in KINDS:
        raise FormError([f"kind must be one of {', '.join(KINDS)}"])
    schedule_id = form.get("schedule", "").strip()
    schedule = config.schedules.get(schedule_id)
    if schedule is None:
        shown = repr(schedule_id[:40]) if schedule_id else "none given"
        problems.append(f"schedule: not a schedule of the on-call file ({shown})")
    person = _person(config, form, "person", problems)
    if kind == "swap":
        other = _person(config, form, "other", problems)
    else:
        other = form.get("replaces", "").strip() or None
        if other is not None and other not in config.people:
            problems.append(f"replaces: not a person of the on-call file ({other[:40]!r})")
            other = None
    if person is not None and other is not None and person == other:
        problems.append(f"{person} cannot cover their own time")
    reason = form.get("reason", "").strip()
    if len(reason) > REASON_MAX:
        problems.append(f"reason: at most {REASON_MAX} characters")
    zone = schedule.time_zone if schedule is not None else UTC
    span = _span(form, ("start", "end"), zone, now, problems)
    other_span = (
        _span(form, ("other_start", "other_end"), zone, now, problems) if kind == "swap" else None
    )
    if problems:
        raise FormError(problems)
    assert person is not None
    assert span is not None
    assert schedule is not None
    rows = [NewOverride(schedule.id, person, other, *span, reason)]
    if kind == "swap":
        assert other is not None
        assert other_span is not None
        rows.append(NewOverride(schedule.id, other, person, *other_span, reason))
    detail = {
        "schedule": schedule.id,
        "person": person,
        ("other" if kind == "swap" else "replaces"): other or "",
        "start": span[0].isoformat(),
        "end": span[1].isoformat(),
        "reason": reason,
    }
    if other_span is not None:
        detail.update(other_start=other_span[0].isoformat(), other_end=other_span[1].isoformat())
    return rows, detail
