"""The what-if's replay of Prometheus's alerting state machine, its grid and bound, and the
working hours the review judges pages by; pure, no services."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bridge.oncall.working_hours import parse_working_hours
from console.whatif_eval import AlertReplay, PlanError, plan


def _replay(true: list[int], for_s: float, keep: float = 0.0, chunks: int = 1) -> list[int]:
    """Firing indexes on a 15 s grid, the true evaluations fed in ``chunks`` pieces."""
    replay = AlertReplay(15.0, for_s, keep)
    size = -(-len(true) // chunks) if true else 1
    for first in range(0, len(true), size):
        replay.feed("s", true[first : first + size])
    return [i for i, _ in replay.firings]


def test_for_counts_consecutive_evaluations_and_a_gap_drops_a_pending_alert():
    assert _replay(list(range(20)), 300) == []  # 285 s of true: still pending
    assert _replay(list(range(21)), 300) == [20]  # 300 s: fires at the 21st evaluation
    assert _replay([*range(10), *range(11, 32)], 300) == [31]  # reset by one false one
    assert _replay([0, 5, 9], 0) == [0, 5, 9]  # no for: each true run fires at once


def test_keep_firing_for_bridges_gaps_shorter_than_it():
    runs = [*range(0, 25), *range(37, 62), *range(200, 225)]  # gaps of 12 and 138 evaluations
    assert _replay(runs, 300) == [20, 57, 220]
    # keep_firing_for 10m: the first gap (11 false evaluations, 165 s) keeps it firing
    assert _replay(runs, 300, keep=600) == [20, 220]
    # false from 25: at 65 (600 s after the first false one) it resolves (Prometheus: not
    # < keepFiringFor), so true again at 66 is a new alert; at 65 it was still firing
    assert _replay([*range(0, 25), *range(66, 100)], 300, keep=600) == [20, 86]
    assert _replay([*range(0, 25), *range(65, 100)], 300, keep=600) == [20]


@pytest.mark.parametrize("chunks", [2, 3, 7])
def test_the_state_carries_across_chunks(chunks):
    runs = [*range(0, 25), *range(37, 62), *range(200, 225)]
    assert _replay(runs, 300, keep=600, chunks=chunks) == [20, 220]
    assert _replay(list(range(21)), 300, chunks=chunks) == [20]


def test_warm_up_firings_are_not_counted_and_order_is_checked():
    replay = AlertReplay(15.0, 300, 0.0, count_from=30)
    replay.feed("a", range(0, 25))  # fires at 20, before the period
    replay.feed("b", range(15, 40))  # fires at 35
    assert replay.firings == [(35, "b")]
    with pytest.raises(ValueError, match="out of order"):
        replay.feed("a", [3])


def test_the_grid_is_the_rules_interval_and_a_year_is_coarse_or_refused():
    month = plan(0, 30 * 86400, 15, 300)
    assert (month.step, month.coarse, month.count_from) == (15, False, 20)
    assert month.origin == -300  # warmed up one for before the period
    assert month.count == 20 + 30 * 86400 // 15 + 1
    chunks = list(month.chunks())
    assert len(chunks) == month.chunk_count == 16
    assert all(last - first + 1 <= 11_000 for first, last in chunks)
    assert chunks[0] == (0, 10_999)
    assert chunks[1][0] == 11_000
    assert chunks[-1][1] == month.count - 1
    year = plan(0, 366 * 86400, 15, 300)
    assert (year.step, year.coarse) == (120, True)  # ≤ for / 2
    assert year.count <= 264_000
    with pytest.raises(PlanError, match=r"at most 45\.8 days"):
        plan(0, 366 * 86400, 15, 45)  # for: 45s would need a step under 22.5 s
    with pytest.raises(PlanError, match="empty"):
        plan(10, 10, 15, 300)


def test_working_hours():
    hours = parse_working_hours("mon-fri 09:00-18:00")
    berlin = ZoneInfo("Europe/Berlin")
    # Tuesday 2026-03-03 07:30 UTC is 08:30 in Berlin: before work there, within it in UTC+2
    early = datetime(2026, 3, 3, 7, 30, tzinfo=UTC)
    assert not hours.contains(early, berlin)
    assert hours.contains(early, ZoneInfo("Europe/Helsinki"))
    assert not hours.contains(datetime(2026, 3, 7, 12, 0, tzinfo=UTC), berlin)  # Saturday
    assert parse_working_hours("mon-wed,fri 08:30-17:00").describe() == "mon-wed,fri 08:30-17:00"
    assert parse_working_hours("sun,sat 10:00-12:00").describe() == "sat,sun 10:00-12:00"
    for bad, message in [
        ("mon-fri", "expected DAYS"),
        ("fri-mon 09:00-17:00", "runs forward"),
        ("mon-fry 09:00-17:00", "days are"),
        ("mon 9h-17h", "HH:MM-HH:MM"),
        ("mon 17:00-09:00", "after the start"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_working_hours(bad)
