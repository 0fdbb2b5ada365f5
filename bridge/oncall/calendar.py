"""On-call shifts as iCalendar feeds (RFC 5545): one VEVENT per shift, of a schedule or of a
person across every schedule, with times in the schedule's zone (TZID and its VTIMEZONE) and
UIDs that stay the same for the same shift on every fetch.

Feed URLs carry ``calendar_token(secret, kind, ident)``: an HMAC-SHA256 of the kind
(``schedule`` or ``person``) and the id, so a URL cannot be guessed or turned into another
schedule's or person's; ``check_calendar_token`` compares in constant time. Serving the feeds
is the public listener's (``bridge/public/``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from bridge.oncall.config import OncallConfig
from bridge.oncall.schedule import Override, Shift, shifts

PRODID = "-//PassItOn//passiton-monitoring on-call//EN"
CALENDAR_KINDS = ("schedule", "person")


def schedule_calendar(
    config: OncallConfig,
    schedule_id: str,
    start: datetime,
    end: datetime,
    overrides: Sequence[Override] = (),
    *,
    now: datetime | None = None,
) -> bytes:
    """Every shift of one schedule overlapping [start, end)."""
    found = shifts(config, schedule_id, start, end, overrides)
    return _calendar(config, f"On call: {schedule_id}", found, overrides, now, with_person=True)


def person_calendar(
    config: OncallConfig,
    person_id: str,
    start: datetime,
    end: datetime,
    overrides: Sequence[Override] = (),
    *,
    now: datetime | None = None,
) -> bytes:
    """Every shift of one person, on every schedule, overlapping [start, end)."""
    person = config.people.get(person_id)
    if person is None:
        raise KeyError(f"unknown person {person_id!r}")
    found = [
        shift
        for schedule_id in config.schedules
        for shift in shifts(config, schedule_id, start, end, overrides)
        if shift.person_id == person_id
    ]
    found.sort(key=lambda s: (s.start, s.schedule_id))
    return _calendar(config, f"On call: {person.name}", found, overrides, now, with_person=False)


def _calendar(
    config: OncallConfig,
    name: str,
    found: list[Shift],
    overrides: Sequence[Override],
    now: datetime | None,
    *,
    with_person: bool,
) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    by_id = {o.id: o for o in overrides}
    for shift in found:
        zone = config.schedules[shift.schedule_id].time_zone
        person = config.people.get(shift.person_id)
        person_name = person.name if person else shift.person_id
        event = Event()
        event.add("uid", _uid(shift))
        event.add("dtstamp", stamp)
        event.add("dtstart", shift.start.astimezone(zone))
        event.add("dtend", shift.end.astimezone(zone))
        summary = f"On call: {shift.schedule_id}"
        event.add("summary", f"{summary} ({person_name})" if with_person else summary)
        event.add(
            "description", _description(shift, person_name, by_id.get(shift.override_id or -1))
        )
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    if found:
        first = min(s.start for s in found) - timedelta(days=1)
        last = max(s.end for s in found) + timedelta(days=1)
        calendar.add_missing_timezones(first.date(), last.date())
    return calendar.to_ical()


def _uid(shift: Shift) -> str:
    ident = f"{shift.schedule_id}/{shift.person_id}/{shift.start:%Y%m%dT%H%M%SZ}"
    if shift.override_id is not None:
        ident += f"/override-{shift.override_id}"
    return f"oncall-{hashlib.sha256(ident.encode()).hexdigest()[:32]}@passiton-monitoring"


def _description(shift: Shift, person_name: str, override: Override | None) -> str:
    text = f"{person_name} ({shift.person_id}) is on call on {shift.schedule_id}"
    if override is not None:
        if override.replaces:
            text += f", covering {override.replaces} (override {override.id})"
        else:
            text += f", in addition (override {override.id})"
        if override.reason:
            text += f": {override.reason}"
    return text + "."


def calendar_token(secret: bytes, kind: str, ident: str) -> str:
    """The unguessable token in a feed's URL (base64url, 43 characters)."""
    if kind not in CALENDAR_KINDS:
        raise ValueError(f"kind must be one of {CALENDAR_KINDS}, got {kind!r}")
    if not secret:
        raise ValueError("the calendar secret must not be empty")
    message = b"passiton-oncall-calendar\x00" + kind.encode() + b"\x00" + ident.encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check_calendar_token(secret: bytes, kind: str, ident: str, token: str) -> bool:
    """Whether ``token`` is this feed's (constant-time compare)."""
    if kind not in CALENDAR_KINDS or not secret:
        return False
    expected = calendar_token(secret, kind, ident)
    return hmac.compare_digest(expected.encode(), token.encode("utf-8", "replace"))


def calendar_secret(bridge_secret: str) -> bytes:
    """The feeds' key, derived from the bridge's secret (never the secret itself)."""
    return hmac.new(
        bridge_secret.encode(), b"passiton-monitoring calendars v1", hashlib.sha256
    ).digest()


def feed_url(public_url: str, secret: bytes, kind: str, ident: str) -> str:
    token = calendar_token(secret, kind, ident)
    return f"{public_url.rstrip('/')}/v1/oncall/{kind}/{ident}.ics?token={token}"
