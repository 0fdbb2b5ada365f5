"""RecentFailures: a payment's retries within the window are one failed payment, in bounded
memory, on a driven clock."""

from __future__ import annotations

from exporter.payment_retries import RecentFailures


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_retry_within_the_window_of_the_latest_failure_is_the_same_payment() -> None:
    clock = Clock()
    recent = RecentFailures(window_seconds=600, capacity=100, clock=clock)
    assert recent.first_failure("org-1", "pi_1")
    clock.now += 300
    assert not recent.first_failure("org-1", "pi_1")
    # the window runs from the latest failure: 900 s after the first, 600 after the retry
    clock.now += 599
    assert not recent.first_failure("org-1", "pi_1")
    # the same id at another organization, and no id at all, are new payments
    assert recent.first_failure("org-2", "pi_1")
    assert recent.first_failure("org-1", None)
    assert recent.first_failure("org-1", None)
    # quiet for longer than the window: a new failed payment, and the old ones forgotten
    clock.now += 601
    assert recent.first_failure("org-1", "pi_1")
    assert len(recent) == 1


def test_memory_is_bounded_forgetting_the_least_recent_failure() -> None:
    clock = Clock()
    recent = RecentFailures(window_seconds=600, capacity=3, clock=clock)
    for n in range(3):
        assert recent.first_failure("org-1", f"pi_{n}")
        clock.now += 1
    assert not recent.first_failure("org-1", "pi_0")  # pi_0 now the most recent
    assert recent.first_failure("org-1", "pi_3")  # pi_1, the least recent, forgotten
    assert len(recent) == 3
    assert recent.first_failure("org-1", "pi_1")
    assert not recent.first_failure("org-1", "pi_0")
