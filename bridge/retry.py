"""The one retry policy every channel's deliveries share.

The delivery worker asks ``next_delay`` after each transient failure and ``expired`` before
scheduling another attempt; channels only say *whether* a failure is retryable (and may pass the
server's ``Retry-After``), they never loop themselves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from passiton_common.variables import default_of

Jitter = Literal["full", "equal", "none"]


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter; ``Retry-After`` is a lower bound.

    ``attempt`` counts the attempts already made (1 after the first failure). The backoff before
    jitter is ``initial * multiplier ** (attempt - 1)``, capped at ``max_delay``.
    ``jitter="full"`` draws uniformly from ``[0, backoff]`` (AWS "full jitter"), ``"equal"`` from
    ``[backoff / 2, backoff]``, ``"none"`` returns the backoff itself.
    A server's ``Retry-After`` raises the delay to at least that value, itself capped at
    ``max_retry_after`` so a misbehaving server cannot park a delivery for days; a delivery
    whose first attempt is older than ``max_age_seconds`` is dead-lettered (``expired``).
    """

    initial: float = default_of("BRIDGE_RETRY_INITIAL_SECONDS")
    multiplier: float = 2.0
    max_delay: float = default_of("BRIDGE_RETRY_MAX_DELAY_SECONDS")
    max_age_seconds: float = default_of("BRIDGE_DELIVERY_MAX_AGE_SECONDS")
    jitter: Jitter = "equal"
    max_retry_after: float = 3600.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError("initial must be positive")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if self.max_delay < self.initial:
            raise ValueError("max_delay must be at least initial")
        if self.max_age_seconds <= 0:
            raise ValueError("max_age_seconds must be positive")
        if self.jitter not in ("full", "equal", "none"):
            raise ValueError(f"jitter must be full, equal or none, not {self.jitter!r}")

    def backoff(self, attempt: int) -> float:
        """The capped exponential backoff before jitter."""
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        # Bound the exponent so huge attempt counts cannot overflow a float.
        exponent = min(attempt - 1, 1024)
        try:
            raw = self.initial * self.multiplier**exponent
        except OverflowError:
            raw = self.max_delay
        return min(raw, self.max_delay)

    def next_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt, after ``attempt`` attempts have failed."""
        cap = self.backoff(attempt)
        if self.jitter == "full":
            delay = self.rng.uniform(0.0, cap)
        elif self.jitter == "equal":
            delay = cap / 2 + self.rng.uniform(0.0, cap / 2)
        else:
            delay = cap
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def expired(self, first_attempt_at: datetime | float, now: datetime | float) -> bool:
        """True when a delivery first tried at ``first_attempt_at`` is past its maximum age.

        Both arguments are either aware datetimes (naive ones are taken as UTC) or epoch seconds.
        """
        return _seconds(now) - _seconds(first_attempt_at) >= self.max_age_seconds


def _seconds(value: datetime | float) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    return max((when - current).total_seconds(), 0.0)
