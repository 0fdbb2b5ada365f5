import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.retry import RetryPolicy, parse_retry_after


def test_backoff_doubles_and_caps():
    policy = RetryPolicy(initial=1, multiplier=2, max_delay=30, jitter="none")
    assert [policy.next_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.next_delay(10_000) == 30


def test_full_jitter_stays_within_zero_and_backoff():
    policy = RetryPolicy(initial=2, max_delay=60, jitter="full", rng=random.Random(7))
    delays = [policy.next_delay(4) for _ in range(500)]
    assert all(0 <= d <= 16 for d in delays)
    assert min(delays) < 4  # actually spread, not a constant
    assert max(delays) > 12


def test_equal_jitter_keeps_at_least_half():
    policy = RetryPolicy(initial=2, max_delay=60, jitter="equal", rng=random.Random(7))
    delays = [policy.next_delay(3) for _ in range(500)]
    assert all(4 <= d <= 8 for d in delays)


def test_deterministic_with_seeded_rng():
    a = RetryPolicy(jitter="full", rng=random.Random(42))
    b = RetryPolicy(jitter="full", rng=random.Random(42))
    assert [a.next_delay(n) for n in range(1, 10)] == [b.next_delay(n) for n in range(1, 10)]


def test_retry_after_is_a_lower_bound():
    policy = RetryPolicy(initial=1, max_delay=300, jitter="none")
    assert policy.next_delay(1, retry_after=30) == 30
    # A backoff already longer than Retry-After wins.
    assert policy.next_delay(8, retry_after=30) == 128


def test_retry_after_may_exceed_max_delay_but_is_capped():
    policy = RetryPolicy(initial=1, max_delay=60, max_retry_after=600, jitter="full")
    assert policy.next_delay(1, retry_after=120) == 120
    assert policy.next_delay(1, retry_after=86_400) == 600


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e9),
    jitter=st.sampled_from(["full", "equal", "none"]),
    seed=st.integers(),
)
def test_delay_always_within_bounds(attempt, retry_after, jitter, seed):
    policy = RetryPolicy(
        initial=0.5, max_delay=120, max_retry_after=900, jitter=jitter, rng=random.Random(seed)
    )
    delay = policy.next_delay(attempt, retry_after)
    assert 0 <= delay <= 900
    if retry_after is not None:
        assert delay >= min(retry_after, 900)


def test_expired_after_max_age_with_datetimes_and_epochs():
    policy = RetryPolicy(max_age_seconds=3600)
    first = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert not policy.expired(first, first + timedelta(minutes=59))
    assert policy.expired(first, first + timedelta(hours=1))
    assert policy.expired(first.replace(tzinfo=None), first + timedelta(hours=2))
    assert not policy.expired(1000.0, 4599.0)
    assert policy.expired(1000.0, 4600.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0},
        {"multiplier": 0.5},
        {"initial": 10, "max_delay": 5},
        {"max_age_seconds": 0},
        {"jitter": "some"},
    ],
)
def test_invalid_policies_rejected(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_attempt_counts_from_one():
    with pytest.raises(ValueError):
        RetryPolicy().next_delay(0)


def test_parse_retry_after():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0
    assert parse_retry_after("Thu, 01 Jan 2026 12:02:00 GMT", now=now) == 120
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
