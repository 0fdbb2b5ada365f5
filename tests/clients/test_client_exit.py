"""The Python client never holds its host: the interpreter exits within 3 s of the last call
whether the exporter refuses connections or never answers; close() is bounded and says whether
it flushed; Retry-After is honoured; a refused token makes flush() False with one warning; no
URL means one warning and nothing else; route templates are written in one form."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from passiton_monitoring_client import Monitoring
from passiton_monitoring_client.routes import normalize_route

from tests.clients.support import WAIT, FakeExporter, closed_port_url

SENDER = """
import sys, time
from passiton_monitoring_client import Monitoring
m = Monitoring(sys.argv[1], token="t")
for i in range(10):
    m.payment.success(f"org-exit-{i}")
print("last call", flush=True)
"""


@pytest.fixture
def server() -> Iterator[FakeExporter]:
    fake = FakeExporter()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def never_answers() -> Iterator[str]:
    """A TCP server that accepts connections, reads, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(WAIT)
    for conn in held:
        conn.close()
    listener.close()


def seconds_from_last_call_to_exit(url: str) -> tuple[float, int, str]:
    child = subprocess.Popen(
        [sys.executable, "-c", SENDER, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    last = time.monotonic()
    assert "last call" in line, line
    code = child.wait(30)
    elapsed = time.monotonic() - last
    return elapsed, code, child.stdout.read()


def test_exit_within_3_s_when_the_exporter_refuses_connections() -> None:
    elapsed, code, out = seconds_from_last_call_to_exit(closed_port_url())
    assert code == 0, out
    assert elapsed < 3.0, f"exited {elapsed:.2f} s after the last call"


def test_exit_within_3_s_when_the_exporter_never_answers(never_answers: str) -> None:
    elapsed, code, out = seconds_from_last_call_to_exit(never_answers)
    assert code == 0, out
    assert elapsed < 3.0, f"exited {elapsed:.2f} s after the last call"


def test_close_is_bounded_overall_and_says_whether_it_flushed(
    server: FakeExporter, never_answers: str
) -> None:
    m = Monitoring(never_answers, flush_interval=3600)
    m.payment.success("org-hang")
    started = time.monotonic()
    assert m.close(timeout=0.5) is False
    assert time.monotonic() - started < 1.5
    assert m.stats.queued == 0

    ok = Monitoring(server.url, flush_interval=3600)
    ok.payment.success("org-ok")
    assert ok.close() is True
    assert ok.stats.sent == 1


def test_retry_after_30_is_not_retried_before_30_s_and_close_stays_bounded(
    server: FakeExporter,
) -> None:
    server.script.append((503, {"Retry-After": "30"}))
    m = Monitoring(server.url, backoff=0.001, max_backoff=0.01, flush_interval=3600)
    m.payment.timeout("org-retry-after")
    assert m.flush(1.5) is False
    assert len(server.requests) == 1, "retried before the Retry-After"
    m.payment.timeout("org-retry-after")  # later batches wait too
    assert m.flush(0.5) is False
    assert len(server.requests) == 1
    started = time.monotonic()
    assert m.close(timeout=0.3) is False
    assert time.monotonic() - started < 1.0
    assert len(server.requests) == 1
    assert m.stats.sent == 0


def test_retry_after_beyond_max_backoff_is_honoured(server: FakeExporter) -> None:
    server.script.append((429, {"Retry-After": "1"}))
    with Monitoring(server.url, backoff=0.001, max_backoff=0.01, flush_interval=3600) as m:
        started = time.monotonic()
        m.traffic.request("o")
        assert m.flush(WAIT)
        assert time.monotonic() - started >= 1.0
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_makes_flush_false_with_one_warning(
    server: FakeExporter, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.extend([(status, {})] * 4)
    with caplog.at_level(logging.WARNING, logger="passiton.monitoring"):
        m = Monitoring(server.url, token="wrong", batch_size=2, flush_interval=3600)
        for _ in range(5):
            m.traffic.request("o")
        assert m.flush(WAIT) is False
        m.traffic.request("o")
        assert m.flush(WAIT) is False
        assert (m.stats.sent, m.stats.failed) == (0, 6)
        m.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"refused the ingest token (HTTP {status})" in warnings[0]
    assert "EXPORTER_INGEST_TOKEN" in warnings[0]


@pytest.mark.parametrize("url", [None, ""])
def test_no_url_warns_once_and_does_nothing_else(
    url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    threads = threading.active_count()
    with caplog.at_level(logging.WARNING, logger="passiton.monitoring"):
        m = Monitoring(url)
        for _ in range(20):
            m.payment.success("org-no-url")
        assert m.flush(0.1) is True
        assert m.close(0.1) is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "no exporter URL" in warnings[0]
    assert threading.active_count() == threads  # no worker thread
    assert m.stats.as_dict() == dict.fromkeys(
        ("queued", "sent", "rejected", "failed", "dropped", "invalid"), 0
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/api/donations/{id}", "/api/donations/:id"),
        ("/api/donations/[id]", "/api/donations/:id"),
        ("/api/donations/:id", "/api/donations/:id"),
        ("/api/orgs/{org}/widgets/{widget:\\w+}", "/api/orgs/:org/widgets/:widget"),
        ("/x/{id:\\d{3}}", "/x/:id"),
        ("/static/{tail:.*}", "/static/*"),
        ("/docs/[...slug]", "/docs/*"),
        ("/docs/[[...slug]]", "/docs/*"),
        ("/docs/*", "/docs/*"),
        ("/docs/*splat", "/docs/*"),
        ("/docs{/*splat}", "/docs/*"),
        ("/(admin)/api/donations/[id]", "/api/donations/:id"),
        ("/(marketing)", "/"),
        ("/", "/"),
        ("unmatched", "unmatched"),
    ],
)
def test_route_templates_are_written_in_one_form(given: str, expected: str) -> None:
    assert normalize_route(given) == expected


def test_endpoint_calls_write_next_and_aiohttp_templates_as_one_route(
    server: FakeExporter,
) -> None:
    with Monitoring(server.url, flush_interval=3600) as m:
        for route in ("/api/donations/{id}", "/api/donations/[id]", "/api/donations/:id"):
            m.dashboard.endpoint(route, 5, 200)
        assert m.flush(WAIT)
    assert {e["route"] for e in server.events} == {"/api/donations/:id"}
