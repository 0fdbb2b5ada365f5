"""Ports for the processes the tests start (exporter, bridge, Prometheus, Alertmanager, `up`).

Taken below Linux's ephemeral range (32768-60999): a port the kernel hands out with ``bind(0)``
is in that range, and between the test closing its probe socket and the process binding the
port, any outgoing connection of six busy workers may take it ("address already in use", seen
on CI). Below the range only another test's explicit choice can collide, and the random pick
makes that unlikely; a port found taken is skipped.
"""

from __future__ import annotations

import random
import socket

LOW, EPHEMERAL = 20000, 32768
_rng = random.Random()


def free_port_block(count: int = 1, attempts: int = 200) -> int:
    """A base port N with N..N+count-1 all free right now (``up --base-port`` needs a block)."""
    for _ in range(attempts):
        base = _rng.randrange(LOW, EPHEMERAL - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return base
    raise RuntimeError("no block of free ports found")


def free_port() -> int:
    """One free port for a process to listen on."""
    return free_port_block(1)
