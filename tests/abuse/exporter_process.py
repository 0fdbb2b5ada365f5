"""A real exporter process (the console script) on free ports, for the abuse tests."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests import plain_http
from tests.ports import free_port

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("passiton-monitoring"))
TOKEN = "abuse-test-ingest-token-0123456789"
BEACON_SECRET = "abuse-test-beacon-secret-0123456789"
ORIGIN = "https://donate.example.org"


@dataclass(frozen=True)
class Exporter:
    internal: str
    public: str
    pid: int
    public_port: int

    def rss_bytes(self) -> int:
        """Resident memory of the exporter process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def metrics(self) -> str:
        return plain_http.get(f"{self.internal}/metrics", timeout=30).text

    def sample(self, line_prefix: str) -> float:
        """The value of the exposition line starting with ``line_prefix`` (0 when absent)."""
        for line in self.metrics().splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@contextmanager
def exporter_process(
    env: Mapping[str, str] | None = None, *, nofile: int | None = None
) -> Iterator[Exporter]:
    """``nofile``: the process's RLIMIT_NOFILE (soft and hard), when given."""
    internal, public = free_port(), free_port()
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")},
        "EXPORTER_INGEST_TOKEN": TOKEN,
        "EXPORTER_BEACON_SECRET": BEACON_SECRET,
        "EXPORTER_CORS_ORIGINS": ORIGIN,
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [
            CONSOLE_SCRIPT,
            "exporter",
            "--listen",
            f"127.0.0.1:{internal}",
            "--public-listen",
            f"127.0.0.1:{public}",
        ],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=(
            (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))
            if nofile
            else None
        ),
    )
    exporter = Exporter(
        f"http://127.0.0.1:{internal}", f"http://127.0.0.1:{public}", proc.pid, public
    )
    try:
        deadline = time.monotonic() + 30
        # one client for the polls: httpx.get builds a TLS context per call (50 ms of CPU)
        with httpx.Client(timeout=1) as http:
            while True:
                try:
                    ready = all(
                        http.get(f"{url}/-/ready").status_code == 200
                        for url in (exporter.internal, exporter.public)
                    )
                except httpx.HTTPError:
                    ready = False
                if ready:
                    break
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "the exporter did not become ready"
                time.sleep(0.1)
        yield exporter
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
