"""Retries of one payment counted once: the failed payments the decline-surge rules test.

A donor whose card is declined often tries again within a minute or two (the same card, another
card, the same payment intent). Counted per attempt, two donors retrying at a small organization
look like a surge of declines; the significance test of the decline-surge rules
(``prometheus/rules/payment.yml``) assumes independent payments. So the recorder also counts
*payments*: a failure of a ``payment_id`` that already failed within the last ``window_seconds``
(since its latest failure) is the same payment tried again and is not counted a second time.

Memory is bounded: at most ``capacity`` payments are remembered (keyed 64-bit hashes of the
organization and the id, never the id), the least recently failed forgotten first; a payment
forgotten that way only counts again, which is what the exporter did before it had this.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from hashlib import blake2b

# a retry is another failure of the same payment within this long of its latest one
RETRY_WINDOW_SECONDS = 600
# payments remembered at most (about 100 bytes each): 40 failed payments a second for 10 minutes
RETRY_CAPACITY = 25_000


class RecentFailures:
    """The payments that failed within the last ``window_seconds`` (by the time of their latest
    failure), at most ``capacity`` of them."""

    __slots__ = ("_capacity", "_clock", "_key", "_seen", "_window")

    def __init__(
        self,
        window_seconds: float = RETRY_WINDOW_SECONDS,
        capacity: int = RETRY_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        key: bytes | None = None,
    ) -> None:
        self._window = window_seconds
        self._capacity = capacity
        self._clock = clock
        self._key = key or os.urandom(16)
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def first_failure(self, organization: str, payment_id: str | None) -> bool:
        """Whether this failure is a new failed payment (not a retry of one that failed within
        the window); a failure without a ``payment_id`` is always new. Remembers it either way,
        so a run of retries stays one payment as long as each comes within the window of the
        one before."""
        if not payment_id:
            return True
        now = self._clock()
        seen = self._seen
        oldest = now - self._window
        while seen:
            first = next(iter(seen.values()))
            if first >= oldest:
                break
            seen.popitem(last=False)
        digest = blake2b(
            f"{organization}\x00{payment_id}".encode(), key=self._key, digest_size=8
        ).digest()
        retry = digest in seen
        seen[digest] = now
        seen.move_to_end(digest)
        if len(seen) > self._capacity:
            seen.popitem(last=False)
        return not retry

    def __len__(self) -> int:
        return len(self._seen)
