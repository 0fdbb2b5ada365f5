"""Per-source traffic state without keeping addresses: keyed hashes in a sliding window.

Each slot of the window keeps a Misra-Gries summary (bounded heavy-hitter counts) and a
HyperLogLog sketch (distinct-source estimate). Scrapes merge the slots; addresses themselves
are never stored, only a keyed BLAKE2b hash with a per-process random key.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from hashlib import blake2b

from exporter.edge import client_network

_HLL_BITS = 11
_HLL_REGISTERS = 1 << _HLL_BITS
_HLL_ALPHA = 0.7213 / (1 + 1.079 / _HLL_REGISTERS)


class _Slot:
    __slots__ = ("counts", "registers", "start", "total")

    def __init__(self, start: int) -> None:
        self.start = start
        self.total = 0
        self.counts: dict[int, int] = {}
        self.registers = bytearray(_HLL_REGISTERS)


class SourceWindow:
    """Heavy-hitter share and distinct count of request sources over the last ``window`` seconds."""

    def __init__(
        self,
        window_seconds: int = 60,
        slots: int = 6,
        capacity: int = 1000,
        top_n: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slot_seconds = max(1, window_seconds // slots)
        self._nslots = slots
        self._capacity = capacity
        self._top_n = top_n
        self._clock = clock
        self._key = os.urandom(16)
        self._slots: list[_Slot] = []
        self.added = 0

    def _current(self) -> _Slot:
        start = int(self._clock()) // self._slot_seconds
        slots = self._slots
        if not slots or slots[-1].start != start:
            slots.append(_Slot(start))
            oldest = start - self._nslots + 1
            while slots[0].start < oldest:
                slots.pop(0)
        return slots[-1]

    def add(self, source: str) -> None:
        source = client_network(source)  # one IPv6 /64 is one source
        digest = blake2b(source.encode(), key=self._key, digest_size=8).digest()
        h = int.from_bytes(digest, "big")
        slot = self._current()
        slot.total += 1
        self.added += 1
        counts = slot.counts
        if h in counts:
            counts[h] += 1
        elif len(counts) < self._capacity:
            counts[h] = 1
        else:
            # Misra-Gries: a newcomer to a full summary decrements everyone instead.
            for key in list(counts):
                if counts[key] == 1:
                    del counts[key]
                else:
                    counts[key] -= 1
        index = h >> (64 - _HLL_BITS)
        rest = h & ((1 << (64 - _HLL_BITS)) - 1)
        rank = (64 - _HLL_BITS) - rest.bit_length() + 1
        if rank > slot.registers[index]:
            slot.registers[index] = rank

    def _live(self) -> list[_Slot]:
        oldest = int(self._clock()) // self._slot_seconds - self._nslots + 1
        return [s for s in self._slots if s.start >= oldest]

    def snapshot(self) -> tuple[int, float, float]:
        """(requests in window, share of the top-N sources, estimated distinct sources)."""
        live = self._live()
        total = sum(s.total for s in live)
        if not total:
            return 0, 0.0, 0.0
        merged: dict[int, int] = {}
        registers = bytearray(_HLL_REGISTERS)
        for slot in live:
            for key, count in slot.counts.items():
                merged[key] = merged.get(key, 0) + count
            for i, value in enumerate(slot.registers):
                if value > registers[i]:
                    registers[i] = value
        top = sorted(merged.values(), reverse=True)[: self._top_n]
        return total, min(1.0, sum(top) / total), _hll_estimate(registers)


class RecentDistinct:
    """Distinct sources seen in the last ``window_seconds``, counted exactly up to ``cap`` (keyed
    hashes of the client's network, never the address): whether a few clients or many report
    something, in bounded memory per key."""

    __slots__ = ("_cap", "_clock", "_key", "_seen", "_window")

    def __init__(
        self,
        window_seconds: int,
        cap: int = 32,
        clock: Callable[[], float] = time.monotonic,
        key: bytes | None = None,
    ) -> None:
        self._window = window_seconds
        self._cap = cap
        self._clock = clock
        self._key = key or os.urandom(16)
        self._seen: dict[bytes, float] = {}

    def add(self, source: str) -> None:
        digest = blake2b(client_network(source).encode(), key=self._key, digest_size=8).digest()
        seen = self._seen
        now = self._clock()
        if digest in seen or len(seen) < self._cap or self.count() < self._cap:
            seen[digest] = now

    def count(self) -> int:
        """How many sources were seen within the window (``cap`` means at least that many)."""
        oldest = self._clock() - self._window
        seen = self._seen
        for digest in [d for d, at in seen.items() if at < oldest]:
            del seen[digest]
        return len(seen)


def _hll_estimate(registers: bytearray) -> float:
    m = _HLL_REGISTERS
    raw = _HLL_ALPHA * m * m / sum(2.0**-r for r in registers)
    zeros = registers.count(0)
    if raw <= 2.5 * m and zeros:
        return m * math.log(m / zeros)
    return raw
