"""The iCalendar feeds parse back (RFC 5545: VERSION, PRODID, UID, DTSTAMP, VTIMEZONE for every
TZID), keep their UIDs across fetches, and their URL tokens are checked in constant time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bridge.oncall.calendar import (
    calendar_token,
    check_calendar_token,
    person_calendar,
    schedule_calendar,
)
from bridge.oncall.config import load_oncall
from bridge.oncall.schedule import Override
from tests.oncall.support import EXAMPLE, utc

NOW = utc(2026, 12, 1)
BERLIN = ZoneInfo("Europe/Berlin")


def parse(data: bytes) -> Calendar:
    assert data.startswith(b"BEGIN:VCALENDAR\r\n")
    assert data.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))  # folded
    calendar = Calendar.from_ical(data)
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    assert calendar.get_missing_tzids() == set()  # a VTIMEZONE for every TZID used
    for event in calendar.walk("VEVENT"):
        assert event["UID"]
        assert event.decoded("DTSTAMP") == NOW
    return calendar


def test_a_schedule_calendar_has_one_event_per_shift_in_the_schedules_zone() -> None:
    config = load_oncall(EXAMPLE)
    cover = [
        Override(7, "primary", "carol", "alice", utc(2026, 12, 4), utc(2026, 12, 5), "dentist")
    ]
    data = schedule_calendar(config, "primary", utc(2026, 12, 1), utc(2026, 12, 15), cover, now=NOW)
    events = parse(data).walk("VEVENT")
    got = [
        (str(e["SUMMARY"]), e.decoded("DTSTART"), e.decoded("DTEND"), str(e["DESCRIPTION"]))
        for e in events
    ]
    assert got == [
        (
            "On call: primary (Alice Example)",
            utc(2026, 11, 30, 8),
            utc(2026, 12, 4),
            "Alice Example (alice) is on call on primary.",
        ),
        (
            "On call: primary (Carol Example)",
            utc(2026, 12, 4),
            utc(2026, 12, 5),
            "Carol Example (carol) is on call on primary, covering alice (override 7): dentist.",
        ),
        (
            "On call: primary (Alice Example)",
            utc(2026, 12, 5),
            utc(2026, 12, 7, 8),
            "Alice Example (alice) is on call on primary.",
        ),
        (
            "On call: primary (Bob Example)",
            utc(2026, 12, 7, 8),
            utc(2026, 12, 14, 8),
            "Bob Example (bob) is on call on primary.",
        ),
        (
            "On call: primary (Alice Example)",
            utc(2026, 12, 14, 8),
            utc(2026, 12, 21, 8),
            "Alice Example (alice) is on call on primary.",
        ),
    ]
    assert all(e.decoded("DTSTART").tzinfo == BERLIN for e in events)
    assert b"DTSTART;TZID=Europe/Berlin:20261130T090000" in data
    assert len({str(e["UID"]) for e in events}) == len(events)


def test_uids_are_stable_across_windows_and_dst() -> None:
    config = load_oncall(EXAMPLE)

    def uids(start: datetime, end: datetime) -> dict[datetime, str]:
        events = parse(schedule_calendar(config, "secondary", start, end, now=NOW)).walk("VEVENT")
        return {e.decoded("DTSTART"): str(e["UID"]) for e in events}

    first = uids(utc(2027, 3, 20), utc(2027, 4, 5))
    second = uids(utc(2027, 3, 25), utc(2027, 4, 10))
    shared = first.keys() & second.keys()
    assert len(shared) >= 10
    assert all(first[k] == second[k] for k in shared)
    # the hand-off stays at 09:00 Berlin time across the change of 2027-03-28
    assert {k.astimezone(BERLIN).hour for k in first} == {9}


def test_a_person_calendar_spans_every_schedule() -> None:
    config = load_oncall(EXAMPLE)
    data = person_calendar(config, "bob", utc(2026, 12, 7), utc(2026, 12, 8, 12), now=NOW)
    calendar = parse(data)
    assert str(calendar["X-WR-CALNAME"]) == "On call: Bob Example"
    events = calendar.walk("VEVENT")
    assert sorted({str(e["SUMMARY"]) for e in events}) == [
        "On call: follow-the-sun",
        "On call: primary",
        "On call: secondary",
    ]
    zones = {e.decoded("DTSTART").tzinfo for e in events}
    assert zones == {BERLIN, ZoneInfo("America/New_York")}
    with pytest.raises(KeyError):
        person_calendar(config, "zed", utc(2026, 12, 7), utc(2026, 12, 8))


def test_an_empty_window_is_a_valid_empty_calendar() -> None:
    config = load_oncall(EXAMPLE)
    data = person_calendar(config, "carol", utc(2026, 12, 7, 12), utc(2026, 12, 7, 12), now=NOW)
    assert parse(data).walk("VEVENT") == []


def test_calendar_tokens() -> None:
    secret = b"s" * 32
    token = calendar_token(secret, "schedule", "primary")
    assert len(token) == 43
    assert token.replace("-", "").replace("_", "").isalnum()
    assert token == calendar_token(secret, "schedule", "primary")
    assert check_calendar_token(secret, "schedule", "primary", token)
    assert not check_calendar_token(secret, "person", "primary", token)
    assert not check_calendar_token(secret, "schedule", "secondary", token)
    assert not check_calendar_token(b"t" * 32, "schedule", "primary", token)
    assert not check_calendar_token(secret, "schedule", "primary", token[:-1])
    assert not check_calendar_token(secret, "schedule", "primary", "é" * 43)
    assert not check_calendar_token(b"", "schedule", "primary", token)
    assert not check_calendar_token(secret, "team", "primary", token)
    # the kind and the id are separated: ("schedule", "a\x00b") is not ("schedule\x00a", "b")
    assert calendar_token(secret, "person", "x") != calendar_token(secret, "schedule", "x")
    with pytest.raises(ValueError):
        calendar_token(secret, "team", "x")
    with pytest.raises(ValueError):
        calendar_token(b"", "person", "x")
