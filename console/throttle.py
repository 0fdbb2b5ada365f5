"""Login throttling: failed logins counted per (account, address), per address, and per account
for addresses that never logged into it, in bounded tables (a flood of addresses or names
cannot grow memory).

Why three counters. The pair counter is tight: one address gets a handful of guesses at one
account. The address counter is broader: one address spraying many accounts. The account
counter is much higher and applies only to addresses that have not logged into that account
before: many addresses (a botnet) at one account are slowed down, while its owner, from an
address they used before, is never locked out by someone else's guessing. A refused login from
a throttled key is answered 429 with ``Retry-After`` and its password is not even checked (no
argon2 work for the attacker). A successful login clears the pair's counter and remembers the
address for the account.

Counts are fixed windows (``WINDOW`` seconds from the first failure) kept in memory, per
process: with several replicas each allows its own bound.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

WINDOW = 900.0  # 15 minutes
PAIR_LIMIT = 5  # failures of one address at one account per window
ADDRESS_LIMIT = 30  # failures of one address, any accounts, per window
ACCOUNT_LIMIT = 200  # failures at one account from addresses that never logged into it
TABLE_SIZE = 20_000  # entries per table; the oldest go first
KNOWN_SECONDS = 30 * 86400.0  # an address that logged into an account stays known this long


class _Windows:
    """Failure counts per key in fixed windows, at most ``size`` keys (least recent dropped)."""

    def __init__(self, limit: int, window: float, size: int) -> None:
        self.limit, self.window, self.size = limit, window, size
        self._table: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()

    def _current(self, key: Hashable, now: float) -> tuple[float, int]:
        started, count = self._table.get(key, (now, 0))
        if now - started >= self.window:
            return now, 0
        return started, count

    def retry_after(self, key: Hashable, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        started, count = self._current(key, now)
        return started + self.window - now if count >= self.limit else 0.0

    def fail(self, key: Hashable, now: float) -> None:
        started, count = self._current(key, now)
        self._table[key] = (started, count + 1)
        self._table.move_to_end(key)
        while len(self._table) > self.size:
            self._table.popitem(last=False)

    def clear(self, key: Hashable) -> None:
        self._table.pop(key, None)


@dataclass
class LoginThrottle:
    pair_limit: int = PAIR_LIMIT
    address_limit: int = ADDRESS_LIMIT
    account_limit: int = ACCOUNT_LIMIT
    window: float = WINDOW
    size: int = TABLE_SIZE
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._pairs = _Windows(self.pair_limit, self.window, self.size)
        self._addresses = _Windows(self.address_limit, self.window, self.size)
        self._accounts = _Windows(self.account_limit, self.window, self.size)
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()

    def _is_known(self, account: str, address: str, now: float) -> bool:
        seen = self._known.get((account, address))
        return seen is not None and now - seen < KNOWN_SECONDS

    def retry_after(self, account: str, address: str) -> float:
        """Seconds this address must wait before trying this account; 0: it may try now."""
        now = self.clock()
        waits = [
            self._pairs.retry_after((account, address), now),
            self._addresses.retry_after(address, now),
        ]
        if not self._is_known(account, address, now):
            waits.append(self._accounts.retry_after(account, now))
        return max(waits)

    def failed(self, account: str, address: str) -> None:
        now = self.clock()
        self._pairs.fail((account, address), now)
        self._addresses.fail(address, now)
        if not self._is_known(account, address, now):
            self._accounts.fail(account, now)

    def succeeded(self, account: str, address: str) -> None:
        self._pairs.clear((account, address))
        self._known[(account, address)] = self.clock()
        self._known.move_to_end((account, address))
        while len(self._known) > self.size:
            self._known.popitem(last=False)
