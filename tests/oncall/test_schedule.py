"""Rotations in time: hand-offs at wall-clock times across DST in Europe/Berlin and
America/New_York for daily, weekly and hours rotations; hand-off times that do not exist or
exist twice; before the start; overrides (cover, add, swap) across a hand-off."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bridge.oncall.schedule import (
    Override,
    Shift,
    current_shifts,
    first_handoff,
    next_handoff,
    on_call,
    resolve_targets,
    shifts,
)
from tests.oncall.support import rotation_config, utc

H = timedelta(hours=1)
ROTATIONS = {
    "daily": ('type: daily, handoff: "09:00"', time(9), 24),
    "weekly": ('type: weekly, handoff: "sunday 09:00"', time(9), 7 * 24),
    "hours": ('type: hours, shift_hours: 12, handoff: "08:00"', None, 12),
}
# (zone, the day its clocks change, +1: spring forward (an hour less), -1: fall back)
CHANGES = [
    ("Europe/Berlin", date(2026, 3, 29), -1),
    ("Europe/Berlin", date(2026, 10, 25), +1),
    ("America/New_York", date(2026, 3, 8), -1),
    ("America/New_York", date(2026, 11, 1), +1),
]


@pytest.mark.parametrize("kind", ROTATIONS)
@pytest.mark.parametrize(("zone", "day", "delta"), CHANGES, ids=[f"{z}-{d}" for z, d, _ in CHANGES])
def test_handoffs_keep_their_wall_clock_time_across_dst(
    tmp_path: Path, kind: str, zone: str, day: date, delta: int
) -> None:
    spec, handoff, hours = ROTATIONS[kind]
    config = rotation_config(tmp_path, zone, f'{spec}, start: "2026-01-01"')
    tz = ZoneInfo(zone)
    middle = datetime.combine(day, time(12), tz)
    found = shifts(config, "s", middle - timedelta(days=15), middle + timedelta(days=15))
    # the shift holding the change (at 03:00 local) is an hour shorter or longer, the rest not
    change = datetime.combine(day, time(4), tz)
    lengths = {(s.end - s.start) for s in found if not s.start <= change < s.end}
    assert lengths == {hours * H}
    (across,) = [s for s in found if s.start <= change < s.end]
    assert across.end - across.start == (hours + delta) * H
    starts = {s.start.astimezone(tz).time() for s in found}
    assert starts == ({handoff} if handoff else {time(8), time(20)})
    for before, after in itertools.pairwise(found):
        assert before.end == after.start
        assert {before.person_id, after.person_id} == {"alice", "bob"}


def test_daily_handoffs_in_berlin_exactly(tmp_path: Path) -> None:
    config = rotation_config(
        tmp_path, "Europe/Berlin", 'type: daily, handoff: "09:00", start: "2026-03-27"'
    )
    found = shifts(config, "s", utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    assert [(s.person_id, s.start, s.end) for s in found] == [
        ("alice", utc(2026, 3, 27, 8), utc(2026, 3, 28, 8)),  # CET: 09:00 = 08:00 UTC
        ("bob", utc(2026, 3, 28, 8), utc(2026, 3, 29, 7)),  # 23 hours
        ("alice", utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)),  # CEST: 09:00 = 07:00 UTC
        ("bob", utc(2026, 3, 30, 7), utc(2026, 3, 31, 7)),
    ]


def test_weekly_in_new_york_in_november_exactly(tmp_path: Path) -> None:
    config = rotation_config(
        tmp_path, "America/New_York", 'type: weekly, handoff: "monday 09:00", start: "2026-10-28"'
    )
    assert first_handoff(config, "s") == utc(2026, 11, 2, 14)  # Mon 09:00 EST, after the change
    found = shifts(config, "s", utc(2026, 11, 2, 14), utc(2026, 11, 10))
    assert [(s.person_id, s.start, s.end) for s in found] == [
        ("alice", utc(2026, 11, 2, 14), utc(2026, 11, 9, 14)),
        ("bob", utc(2026, 11, 9, 14), utc(2026, 11, 16, 14)),
    ]


@pytest.mark.parametrize(
    ("zone", "handoff", "day", "expected"),
    [
        # 02:30 does not exist: read with the offset before the change (CET), = 03:30 CEST
        ("Europe/Berlin", "02:30", date(2026, 3, 29), utc(2026, 3, 29, 1, 30)),
        # 02:30 happens twice: its first occurrence (CEST)
        ("Europe/Berlin", "02:30", date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),
        ("America/New_York", "02:30", date(2026, 3, 8), utc(2026, 3, 8, 7, 30)),  # = 03:30 EDT
        ("America/New_York", "01:30", date(2026, 11, 1), utc(2026, 11, 1, 5, 30)),  # EDT
    ],
)
def test_handoff_times_that_do_not_exist_or_exist_twice_follow_fold_0(
    tmp_path: Path, zone: str, handoff: str, day: date, expected: datetime
) -> None:
    config = rotation_config(
        tmp_path, zone, f'type: daily, handoff: "{handoff}", start: "2026-01-01"'
    )
    found = shifts(
        config,
        "s",
        datetime.combine(day, time(12), ZoneInfo(zone)) - timedelta(hours=36),
        expected + H,
    )
    assert expected in [s.start for s in found]
    assert all(s.end > s.start for s in found)


def test_an_hourly_handoff_lost_in_the_spring_gap_leaves_no_empty_shift(tmp_path: Path) -> None:
    config = rotation_config(
        tmp_path,
        "Europe/Berlin",
        'type: hours, shift_hours: 1, handoff: "00:00", start: "2026-03-29"',
    )
    found = shifts(config, "s", utc(2026, 3, 28, 23), utc(2026, 3, 29, 3))
    # 00:00 CET, 01:00 CET, then 02:00 (= 03:00 CEST, fold=0) and 03:00 CEST coincide
    assert [(s.person_id, s.start, s.end) for s in found] == [
        ("alice", utc(2026, 3, 28, 23), utc(2026, 3, 29, 0)),
        ("bob", utc(2026, 3, 29, 0), utc(2026, 3, 29, 1)),
        ("bob", utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),  # shift 3; shift 2 (alice) has no length
        ("alice", utc(2026, 3, 29, 2), utc(2026, 3, 29, 3)),
    ]


def test_before_the_first_handoff_the_first_person_is_on_call(tmp_path: Path) -> None:
    config = rotation_config(
        tmp_path, "Europe/Berlin", 'type: weekly, handoff: "monday 09:00", start: "2026-12-02"'
    )
    assert first_handoff(config, "s") == utc(2026, 12, 7, 8)  # the first Monday on or after start
    assert on_call(config, "s", utc(2020, 1, 1)) == ["alice"]
    (shift,) = current_shifts(config, "s", utc(2026, 12, 3))
    # the first shift reaches back; the window's beginning is its start
    assert shift == Shift("s", "alice", utc(2026, 12, 3), utc(2026, 12, 14, 8))
    assert next_handoff(config, "s", utc(2026, 12, 3)) == Shift(
        "s", "bob", utc(2026, 12, 14, 8), utc(2026, 12, 21, 8)
    )


def test_shifts_are_whole_not_cut_at_the_window(tmp_path: Path) -> None:
    config = rotation_config(
        tmp_path, "Europe/Berlin", 'type: weekly, handoff: "monday 09:00", start: "2026-11-30"'
    )
    assert shifts(config, "s", utc(2026, 12, 3), utc(2026, 12, 4)) == [
        Shift("s", "alice", utc(2026, 11, 30, 8), utc(2026, 12, 7, 8))
    ]
    assert shifts(config, "s", utc(2026, 12, 7, 8), utc(2026, 12, 7, 9)) == [
        Shift("s", "bob", utc(2026, 12, 7, 8), utc(2026, 12, 14, 8))
    ]


def test_rotation_order_wraps_with_three_people(tmp_path: Path) -> None:
    config = rotation_config(
        tmp_path,
        "UTC",
        'type: daily, handoff: "00:00", start: "2026-01-01"',
        people="[carol, alice, bob]",
    )
    found = shifts(config, "s", utc(2026, 1, 1), utc(2026, 1, 8))
    assert [s.person_id for s in found] == ["carol", "alice", "bob"] * 2 + ["carol"]
    assert on_call(config, "s", utc(2026, 1, 31, 23, 59)) == ["carol"]  # day 30: 30 % 3 == 0


# -- overrides: alice's week is 11-30 08:00Z .. 12-07 08:00Z, bob's 12-07 .. 12-14 -------------


def _weekly(tmp_path: Path):  # type: ignore[no-untyped-def]
    return rotation_config(
        tmp_path, "Europe/Berlin", 'type: weekly, handoff: "monday 09:00", start: "2026-11-30"'
    )


def _override(
    i: int, person: str, replaces: str | None, start: datetime, end: datetime
) -> Override:
    return Override(i, "s", person, replaces, start, end)


def test_a_cover_across_a_handoff_takes_only_the_covered_persons_time(tmp_path: Path) -> None:
    config = _weekly(tmp_path)
    cover = [_override(1, "carol", "alice", utc(2026, 12, 6), utc(2026, 12, 8))]
    assert shifts(config, "s", utc(2026, 12, 1), utc(2026, 12, 10), cover) == [
        Shift("s", "alice", utc(2026, 11, 30, 8), utc(2026, 12, 6)),
        Shift("s", "carol", utc(2026, 12, 6), utc(2026, 12, 7, 8), override_id=1),
        Shift("s", "bob", utc(2026, 12, 7, 8), utc(2026, 12, 14, 8)),
    ]
    assert on_call(config, "s", utc(2026, 12, 7, 7, 59), cover) == ["carol"]
    assert on_call(config, "s", utc(2026, 12, 7, 8), cover) == ["bob"]
    assert next_handoff(config, "s", utc(2026, 12, 6, 12), cover) == Shift(
        "s", "bob", utc(2026, 12, 7, 8), utc(2026, 12, 14, 8)
    )
    # a cover of someone not on call in its span changes nothing
    idle = [_override(2, "carol", "bob", utc(2026, 12, 2), utc(2026, 12, 3))]
    assert shifts(config, "s", utc(2026, 12, 1), utc(2026, 12, 4), idle) == shifts(
        config, "s", utc(2026, 12, 1), utc(2026, 12, 4)
    )


def test_an_addition_across_a_handoff(tmp_path: Path) -> None:
    config = _weekly(tmp_path)
    extra = [_override(1, "carol", None, utc(2026, 12, 6), utc(2026, 12, 8))]
    assert shifts(config, "s", utc(2026, 12, 1), utc(2026, 12, 10), extra) == [
        Shift("s", "alice", utc(2026, 11, 30, 8), utc(2026, 12, 7, 8)),
        Shift("s", "carol", utc(2026, 12, 6), utc(2026, 12, 8), override_id=1),
        Shift("s", "bob", utc(2026, 12, 7, 8), utc(2026, 12, 14, 8)),
    ]
    assert on_call(config, "s", utc(2026, 12, 6, 12), extra) == ["alice", "carol"]
    assert on_call(config, "s", utc(2026, 12, 7, 12), extra) == ["bob", "carol"]
    assert on_call(config, "s", utc(2026, 12, 8), extra) == ["bob"]
    # overrides of other schedules do not count
    other = [Override(2, "other", "carol", None, utc(2026, 12, 1), utc(2026, 12, 9))]
    assert on_call(config, "s", utc(2026, 12, 6, 12), other) == ["alice"]


def test_a_swap_is_two_covers(tmp_path: Path) -> None:
    config = _weekly(tmp_path)
    swap = [
        _override(1, "bob", "alice", utc(2026, 11, 30, 8), utc(2026, 12, 7, 8)),
        _override(2, "alice", "bob", utc(2026, 12, 7, 8), utc(2026, 12, 14, 8)),
    ]
    found = shifts(config, "s", utc(2026, 12, 1), utc(2026, 12, 10), swap)
    assert [(s.person_id, s.start, s.end, s.override_id) for s in found] == [
        ("bob", utc(2026, 11, 30, 8), utc(2026, 12, 7, 8), 1),
        ("alice", utc(2026, 12, 7, 8), utc(2026, 12, 14, 8), 2),
    ]


def test_overrides_apply_in_id_order(tmp_path: Path) -> None:
    config = _weekly(tmp_path)
    chain = [
        _override(1, "bob", None, utc(2026, 12, 1), utc(2026, 12, 3)),  # bob in addition
        _override(2, "bob", "alice", utc(2026, 12, 2), utc(2026, 12, 4)),  # and covers alice
        _override(
            3, "carol", "bob", utc(2026, 12, 2, 12), utc(2026, 12, 2, 13)
        ),  # carol covers him
    ]
    assert on_call(config, "s", utc(2026, 12, 1, 12), chain) == ["alice", "bob"]
    assert on_call(config, "s", utc(2026, 12, 2, 1), chain) == ["bob"]
    assert on_call(config, "s", utc(2026, 12, 2, 12, 30), chain) == ["carol"]
    assert on_call(config, "s", utc(2026, 12, 3, 12), chain) == ["bob"]
    assert on_call(config, "s", utc(2026, 12, 4), chain) == ["alice"]


def test_resolve_targets_deduplicates_in_order(tmp_path: Path) -> None:
    config = _weekly(tmp_path)
    extra = [_override(1, "carol", None, utc(2026, 12, 1), utc(2026, 12, 2))]
    people = resolve_targets(
        config, ["person:bob", "schedule:s", "person:alice"], utc(2026, 12, 1, 12), extra
    )
    assert [p.id for p in people] == ["bob", "alice", "carol"]
    assert [p.id for p in resolve_targets(config, ["schedule:s"], utc(2026, 12, 8))] == ["bob"]
    with pytest.raises(KeyError, match="unknown schedule 'nope'"):
        resolve_targets(config, ["schedule:nope"], utc(2026, 12, 8))
    with pytest.raises(KeyError, match="unknown person 'zed'"):
        resolve_targets(config, ["person:zed"], utc(2026, 12, 8))
