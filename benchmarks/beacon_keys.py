"""Beacon throughput with key verification, as a ratio to the same exporter without it, side by
side in one run on this machine.

Two exporter processes (the real server, pinned to CPU 0, one after the other), identical but for
``exporter.beacon_keys.verify``: the real HMAC check, or a stand-in that accepts every key. wrk
(pinned to CPU 1) posts the same keyed one-event beacon to each. Rate limits are set out of the
way. Also reported: the cost of one verification alone.

Run: `.venv/bin/python benchmarks/beacon_keys.py [--seconds 8]`. Needs: wrk (Debian package).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.exporter_ingest import PY, free_port, server, wrk
from exporter import beacon_keys

SECRET = "benchmark-beacon-secret-0123456789"
LAUNCHER = textwrap.dedent(
    """
    import sys
    import exporter.beacon_keys as keys
    if sys.argv[1] == "off":
        keys.verify = lambda *args: True
    from passiton_monitoring.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)
EVENT = {
    "type": "widget.loaded",
    "organization_id": "org-123",
    "widget_id": "w-1",
    "duration_ms": 812,
}


def run(mode: str, seconds: int, connections: int) -> dict:
    internal, public = free_port(), free_port()
    env = {
        "EXPORTER_BEACON_SECRET": SECRET,
        "EXPORTER_BEACON_RATE_PER_MINUTE": "1000000000",
        "EXPORTER_BEACON_KEY_RATE_PER_MINUTE": "1000000000",
        "LOG_LEVEL": "WARNING",
    }
    argv = [PY, "-c", LAUNCHER, mode, "exporter", "--dev"]
    argv += ["--listen", f"127.0.0.1:{internal}", "--public-listen", f"127.0.0.1:{public}"]
    key = beacon_keys.beacon_key(SECRET, EVENT["organization_id"], EVENT["widget_id"])
    with server(argv, f"http://127.0.0.1:{public}/-/ready", env=env):
        return wrk(
            f"http://127.0.0.1:{public}/v1/beacon?key={key}",
            json.dumps([EVENT]).encode(),
            "text/plain",
            seconds,
            connections,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk util-linux")
    off = run("off", args.seconds, args.connections)
    on = run("on", args.seconds, args.connections)
    for result in (off, on):
        assert result["errors"] == 0, result
        assert result["non2xx"] == 0, result
    key = beacon_keys.beacon_key(SECRET, "org-123", "w-1")
    n = 20000
    verify = timeit.timeit(lambda: beacon_keys.verify(SECRET, "org-123", "w-1", key), number=n) / n
    print(f"beacon without key verification: {off['rps']:8.0f} req/s  p99 {off['p99']:.2f} ms")
    print(f"beacon with key verification:    {on['rps']:8.0f} req/s  p99 {on['p99']:.2f} ms")
    print(f"ratio with/without: {on['rps'] / off['rps']:.3f}")
    print(f"one verification alone: {verify * 1e6:.2f} us")


if __name__ == "__main__":
    main()
