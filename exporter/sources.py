"""Per-source traffic state without keeping addresses: keyed hashes in a sliding window.

Each slot of the window keeps a Misra-Gries summary (bounded heavy-hitter counts) and a
HyperLogLog sketch (distinct-source estimate). Scrapes merge the slots; addresses themselves
are never stored, only a keyed hash: the traffic window's is SipHash-1-3 (the interpreter's
string hash, keyed with its per-process random secret: leave ``PYTHONHASHSEED`` unset) of the
address and a random salt of the window's, a fraction of BLAKE2b's cost for a batch of thousands
of addresses; the widget-failure counts' is a keyed BLAKE2b.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from hashlib import blake2b

from exporter.edge import client_network

_HLL_BITS = 11
_HLL_REGISTERS = 1 << _HLL_BITS
_HLL_ALPHA = 0.7213 / (1 + 1.079 / _HLL_REGISTERS)
_MASK64 = (1 << 64) - 1
_REST_BITS = 64 - _HLL_BITS
_REST_MASK = (1 << _REST_BITS) - 1


def _newcomer(counts: dict[int, int], h: int, count: int, capacity: int) -> None:
    """Misra-Gries: ``count`` requests of a source new to a full summary. Each decrements everyone
    instead, until one finds room."""
    while count:
        if h in counts:
            counts[h] += count
            return
        if len(counts) < capacity:
            counts[h] = count
            return
        count -= 1
        for key in list(counts):
            if counts[key] == 1:
                del counts[key]
            else:
                counts[key] -= 1


class _Slot:
    __slots__ = ("counts", "overflowed", "registers", "start", "total")

    def __init__(self, start: int) -> None:
        self.start = start
        self.total = 0
        # whether the summary ever had to drop a source: until then its keys are every source
        self.overflowed = False
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
        self._salt = os.urandom(16)
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

    def add(self, source: str, count: int = 1) -> None:
        """``count`` requests from ``source``."""
        self.add_counts({source: count})

    def add_counts(self, sources: Mapping[str, int]) -> None:
        """Requests by source (a batch's): what adding them one at a time would leave."""
        slot = self._current()
        counts, registers, capacity = slot.counts, slot.registers, self._capacity
        salt = self._salt
        added = 0
        for source, count in sources.items():
            # one IPv6 /64 is one source; 64 bits of a keyed SipHash (see the module's doc)
            network = client_network(source) if ":" in source else source
            h = hash((salt, network)) & _MASK64
            added += count
            seen = counts.get(h)
            if seen is not None:
                counts[h] = seen + count
            elif len(counts) < capacity:
                counts[h] = count
            else:
                slot.overflowed = True
                _newcomer(counts, h, count, capacity)
            index = h >> _REST_BITS
            rank = _REST_BITS - (h & _REST_MASK).bit_length() + 1
            if rank > registers[index]:
                registers[index] = rank
        slot.total += added
        self.added += added

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
        # exact while no slot's summary dropped a source (its keys are then every source seen,
        # and the sketch's collisions would only blur a small count); the sketch's estimate after
        if not any(slot.overflowed for slot in live):
            return total, min(1.0, sum(top) / total), float(len(merged))
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
