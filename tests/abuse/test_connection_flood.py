"""Attack (issue 18): hold many idle connections to the exporter's public listener so that the
process runs out of file descriptors and Prometheus cannot scrape the internal ``/metrics``
(1,400 idle connections made 4 of 7 scrapes fail).

The real exporter process runs with a descriptor limit of 600 and a configured public cap of
2,000: at start-up the cap is lowered to what the limit leaves after the descriptors kept for the
internal listener, so 1,000 idle connections to the public listener (more than the cap, more than
the limit) cost it nothing: every scrape of ``/metrics`` answers, the connections past the cap
are closed at accept and counted, and once the flood ends the public listener serves again.
"""

from __future__ import annotations

import socket
import time

import httpx

from passiton_common.connection_cap import RESERVED_DESCRIPTORS
from tests import plain_http
from tests.abuse.exporter_process import exporter_process

NOFILE = 600
FLOOD = 1000
REFUSED = 'passiton_exporter_connections_refused_total{listener="public"}'
ENV = {
    "EXPORTER_PUBLIC_MAX_CONNECTIONS": "2000",
    # idle connections stay for the whole test unless the cap closes them
    "EXPORTER_HEADER_TIMEOUT_SECONDS": "120",
}


def _open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return sock


def test_an_idle_connection_flood_on_the_public_listener_leaves_metrics_answering() -> None:
    with exporter_process(ENV, nofile=NOFILE) as exporter:
        assert exporter.sample(REFUSED) == 0  # the counter exists at 0 from start-up
        flood: list[socket.socket] = []
        try:
            failures = 0
            for _ in range(FLOOD):
                try:
                    flood.append(_open(exporter.public_port))
                except OSError:  # the listen backlog is full for a moment: the flood goes on
                    failures += 1
                    if failures > 3:  # the listener has stopped accepting: flooded enough
                        break
            scrapes = [
                plain_http.get(f"{exporter.internal}/metrics", timeout=10).status_code
                for _ in range(7)
            ]
            assert scrapes == [200] * 7
            cap = NOFILE - RESERVED_DESCRIPTORS
            deadline = time.monotonic() + 30  # a hang guard, not a measurement
            while exporter.sample(REFUSED) < len(flood) - cap:
                assert time.monotonic() < deadline, exporter.sample(REFUSED)
                time.sleep(0.05)
            assert exporter.sample(REFUSED) <= len(flood)
            # the events API on the internal listener is served too
            health = plain_http.get(f"{exporter.internal}/-/healthy", timeout=10)
            assert health.status_code == 200
        finally:
            for sock in flood:
                sock.close()
        # the flood over, the public listener serves again
        deadline = time.monotonic() + 30
        while True:
            try:
                if plain_http.get(f"{exporter.public}/-/healthy", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the public listener did not recover"
            time.sleep(0.05)
