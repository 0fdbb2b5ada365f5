"""The Python client when delivery goes wrong or runs elsewhere: the server down, a full queue,
close, retries and their bounds, rejected events; from asyncio code, in a forked child, and
against the real exporter."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from passiton_monitoring_client import Monitoring
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import create_app
from exporter.config import ExporterConfig
from tests.clients.support import WAIT, FakeExporter, ThreadedServer, closed_port_url


@pytest.fixture
def server() -> Iterator[FakeExporter]:
    fake = FakeExporter()
    fake.start()
    yield fake
    fake.stop()


def test_server_down_never_raises_and_counts_failed() -> None:
    with Monitoring(closed_port_url(), batch_size=2, max_retries=2, backoff=0.001) as m:
        for i in range(5):
            m.traffic.request(f"org-{i}")
        assert not m.flush(WAIT)  # done, but nothing was delivered
        stats = m.stats
    assert (stats.sent, stats.failed, stats.dropped, stats.queued) == (0, 5, 0, 0)


def test_full_queue_drops_the_oldest_events_and_counts_them(server: FakeExporter) -> None:
    server.gate = threading.Event()
    with Monitoring(server.url, batch_size=1, max_queue=5, flush_interval=0) as m:
        m.traffic.request("org-0")
        server.wait_for_requests(1)  # the worker is now stuck on the first request
        for i in range(1, 11):
            m.traffic.request(f"org-{i}")
        assert m.stats.dropped == 5
        assert m.stats.queued == 5
        server.gate.set()
        assert m.flush(WAIT)
        assert m.stats.sent == 6
    assert [e["organization_id"] for e in server.events] == [
        "org-0",
        "org-6",
        "org-7",
        "org-8",
        "org-9",
        "org-10",
    ]


def test_close_flushes_and_later_calls_are_dropped_quietly(server: FakeExporter) -> None:
    m = Monitoring(server.url, batch_size=100, flush_interval=3600)
    for i in range(3):
        m.dashboard.endpoint("/r", i, 200)
    m.close()
    assert len(server.events) == 3
    assert m.stats.sent == 3
    m.dashboard.endpoint("/r", 1, 200)
    m.close()  # idempotent
    assert m.stats.dropped == 1
    assert len(server.events) == 3


def test_close_gives_up_on_an_unreachable_server_after_its_timeout() -> None:
    m = Monitoring(closed_port_url(), max_retries=1000, backoff=0.01, max_backoff=0.02)
    m.payment.timeout("o")
    started = time.monotonic()
    assert not m.close(timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert m.stats.queued == 0
    # the batch the worker was retrying is counted once it notices (its wait is interrupted)
    deadline = time.monotonic() + WAIT
    while m.stats.failed != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m.stats.failed == 1


def test_503_is_retried_until_it_succeeds(server: FakeExporter) -> None:
    server.script.extend([(503, {}), (503, {})])
    with Monitoring(server.url, backoff=0.001, flush_interval=3600) as m:
        m.payment.failure("o", error="declined")
        m.payment.failure("o", error="declined")
        assert m.flush(WAIT)
        assert (m.stats.sent, m.stats.failed) == (2, 0)
    assert len(server.requests) == 3
    assert server.requests[0].events == server.requests[2].events


def test_429_is_retried_after_the_servers_retry_after(server: FakeExporter) -> None:
    server.script.append((429, {"Retry-After": "0"}))
    with Monitoring(server.url, backoff=0.001, flush_interval=3600) as m:
        m.traffic.request("o")
        assert m.flush(WAIT)
        assert (m.stats.sent, m.stats.failed) == (1, 0)
    assert len(server.requests) == 2


def test_retries_are_bounded(server: FakeExporter) -> None:
    server.script.extend([(500, {})] * 10)
    with Monitoring(server.url, max_retries=2, backoff=0.001, flush_interval=3600) as m:
        m.traffic.request("o")
        assert not m.flush(WAIT)
        assert (m.stats.sent, m.stats.failed) == (0, 1)
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_other_than_429_are_not_retried(server: FakeExporter, status: int) -> None:
    server.script.extend([(status, {}), (202, {})])
    with Monitoring(server.url, backoff=0.001, flush_interval=3600) as m:
        m.traffic.request("o")
        m.traffic.request("o")
        assert not m.flush(WAIT)  # refused for good: flush() says so
        assert (m.stats.sent, m.stats.failed) == (0, 2)
    assert len(server.requests) == 1


def test_a_batch_too_large_for_the_server_is_split(server: FakeExporter) -> None:
    server.script.append((413, {}))
    with Monitoring(server.url, flush_interval=3600) as m:
        for i in range(5):
            m.traffic.request(f"org-{i}")
        assert m.flush(WAIT)
        assert m.stats.sent == 5
    assert [len(r.events) for r in server.requests] == [5, 2, 3]


def test_events_the_server_rejects_are_counted(server: FakeExporter) -> None:
    server.answer_rejected = 1
    with Monitoring(server.url, flush_interval=3600) as m:
        m.traffic.request("a")
        m.traffic.request("b")
        assert m.flush(WAIT)
        stats = m.stats
    assert (stats.sent, stats.rejected, stats.failed) == (1, 1, 0)
    assert stats.as_dict() == {
        "queued": 0,
        "sent": 1,
        "rejected": 1,
        "failed": 0,
        "dropped": 0,
        "invalid": 0,
    }


async def test_usable_from_asyncio_code(server: FakeExporter) -> None:
    async with Monitoring(server.url, flush_interval=3600) as m:
        for _ in range(3):
            m.dashboard.endpoint("/async", 2, 201, method="PUT")
            await asyncio.sleep(0)
        assert await m.aflush(WAIT)
        assert m.stats.sent == 3
    assert {e["route"] for e in server.events} == {"/async"}


def _child_sends(m: Monitoring) -> None:
    m.traffic.request("from-child")
    m.close()


def test_a_forked_child_sends_its_own_events_not_its_parents(server: FakeExporter) -> None:
    server.gate = threading.Event()
    with Monitoring(server.url, batch_size=1, flush_interval=0) as m:
        m.traffic.request("parent-1")
        server.wait_for_requests(1)  # worker busy: the next event stays queued across the fork
        m.traffic.request("parent-2")
        child = multiprocessing.get_context("fork").Process(target=_child_sends, args=(m,))
        child.start()
        server.wait_for_requests(2)
        server.gate.set()
        child.join(WAIT)
        assert child.exitcode == 0
        assert m.flush(WAIT)
    assert sorted(e["organization_id"] for e in server.events) == [
        "from-child",
        "parent-1",
        "parent-2",
    ]


def exporter_samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=WAIT) as response:  # noqa: S310
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_against_the_real_exporter_the_metrics_change() -> None:
    config = ExporterConfig.from_env({"EXPORTER_INGEST_TOKEN": "ingest-token-0123456789"})
    with ThreadedServer(create_app(config)) as exporter:
        with Monitoring(exporter.url, token="ingest-token-0123456789", flush_interval=3600) as m:
            m.payment.success("org-live", amount=1000, currency="usd", duration_ms=900)
            m.payment.failure(
                "org-live", amount=2500, currency="usd", error="Your card was declined."
            )
            m.payment.failure("org-live", decline_code="insufficient_funds")
            m.widget.loaded("org-live", "widget-1", 1200)
            m.traffic.request("org-live", path="/give", country="US", user_agent="Mozilla/5.0")
            m.dashboard.endpoint("/api/donations/{id}", 834, 500, method="POST")
            m.dashboard.auth_failure("invalid_password")
            m.dashboard.database_error("select", error="connection refused")
            assert m.flush(WAIT)
            stats = m.stats
        with Monitoring(exporter.url, token="wrong", flush_interval=3600) as unauthorized:
            unauthorized.traffic.request("org-live")
            assert not unauthorized.flush(WAIT)  # a 401: not delivered
            assert (unauthorized.stats.sent, unauthorized.stats.failed) == (0, 1)
        samples = exporter_samples(exporter.url)
    assert (stats.sent, stats.rejected, stats.failed, stats.invalid) == (8, 0, 0, 0)
    accepted = {
        dict(labels)["type"]: value
        for (name, labels), value in samples.items()
        if name == "passiton_exporter_events_accepted_total"
    }
    assert {t: v for t, v in accepted.items() if v} == {
        "payment.succeeded": 1,
        "payment.failed": 2,
        "widget.loaded": 1,
        "traffic.request": 1,  # the one sent with the wrong token was refused
        "endpoint.request": 1,
        "auth.failed": 1,
        "database.error": 1,
    }
    failures = sum(
        value
        for (name, labels), value in samples.items()
        if name == "passiton_payment_failures_total"
        and dict(labels)["organization_id"] == "org-live"
    )
    assert failures == 2
