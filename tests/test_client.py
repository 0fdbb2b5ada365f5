"""The Python client against real HTTP servers running in another thread."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import socket
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from passiton_monitoring_client import MAX_TEXT, Monitoring
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import create_app
from exporter.config import ExporterConfig

WAIT = 10.0  # generous upper bound for background work; never a timing assertion


@dataclass
class Recorded:
    headers: dict[str, str]
    events: list[dict[str, Any]]


class ThreadedServer:
    """Serves an aiohttp app on a free port from its own thread and event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app, access_log=None)
        self.url = ""

    async def _start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(WAIT)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()


class FakeExporter:
    """Speaks the exporter's ``POST /v1/events`` contract; answers can be scripted per request."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.answer_rejected: int = 0
        self.gate: threading.Event | None = None  # when given, requests wait until it is set
        self.cond = threading.Condition()
        app = web.Application()
        app.router.add_post("/v1/events", self._handle)
        self.server = ThreadedServer(app)

    @property
    def url(self) -> str:
        return self.server.url

    async def _handle(self, request: web.Request) -> web.Response:
        events = json.loads(await request.read())
        with self.cond:
            self.requests.append(Recorded(dict(request.headers), events))
            self.cond.notify_all()
        if self.gate is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        status, headers = self.script.popleft() if self.script else (202, {})
        if status == 202:
            rejected = min(self.answer_rejected, len(events))
            errors = [{"index": i, "error": "test rejection"} for i in range(rejected)]
            answer = {"accepted": len(events) - rejected, "rejected": rejected, "errors": errors}
            return web.json_response(answer, status=202)
        return web.json_response({"error": f"scripted {status}"}, status=status, headers=headers)

    def start(self) -> None:
        self.server.__enter__()

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.__exit__()

    def wait_for_requests(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= count, WAIT), self.requests

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.cond:
            return [event for recorded in self.requests for event in recorded.events]


@pytest.fixture
def server() -> Iterator[FakeExporter]:
    fake = FakeExporter()
    fake.start()
    yield fake
    fake.stop()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def without_timestamp(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in event.items() if k != "timestamp"} for event in events]


def test_full_batches_go_out_in_the_background_and_flush_sends_the_rest(
    server: FakeExporter,
) -> None:
    with Monitoring(server.url, token="s3cret", batch_size=3, flush_interval=3600) as monitoring:
        for i in range(7):
            monitoring.traffic.request(f"org-{i}")
        server.wait_for_requests(2)  # two full batches, without any flush
        assert [len(r.events) for r in server.requests] == [3, 3]
        assert monitoring.flush(WAIT)
        assert [len(r.events) for r in server.requests] == [3, 3, 1]
        assert monitoring.stats.sent == 7
    assert [e["organization_id"] for e in server.events] == [f"org-{i}" for i in range(7)]
    for recorded in server.requests:
        assert recorded.headers["Authorization"] == "Bearer s3cret"
        assert recorded.headers["Content-Type"] == "application/json"


def test_a_partial_batch_goes_out_after_the_flush_interval(server: FakeExporter) -> None:
    with Monitoring(server.url, flush_interval=0.05) as monitoring:
        monitoring.payment.success("org-1", amount=500, currency="usd")
        server.wait_for_requests(1)  # nobody called flush
        assert without_timestamp(server.events) == [
            {
                "type": "payment.succeeded",
                "organization_id": "org-1",
                "amount": 500,
                "currency": "usd",
            }
        ]
        assert "Authorization" not in server.requests[0].headers


def test_every_call_builds_the_contract_event(server: FakeExporter) -> None:
    before = int(time.time() * 1000)
    with Monitoring(server.url, flush_interval=3600) as m:
        m.payment.success("o", amount=2500, currency="usd", duration_ms=812.5)
        m.payment.failure(
            organization_id="o",
            amount=2500,
            currency="usd",
            error=RuntimeError("Your card was declined."),
            decline_code="insufficient_funds",
            failure_code="card_declined",
        )
        m.payment.timeout("o", duration_ms=30000, provider="stripe")
        m.payment.webhook_failed("charge.failed", error="boom")
        m.widget.loaded("o", "w", 1234, url="https://example.org/give")
        m.widget.load_error("o", "w", error="timeout", url="https://example.org/give")
        m.widget.render_error("o", "w", error=ValueError(), source="render")
        m.widget.script_error("o", "w", error="x is not defined", source="widget.js")
        m.traffic.request(
            "o", path="/give", country="US", user_agent="Mozilla/5.0", ip="203.0.113.9"
        )
        m.dashboard.endpoint("/api/donations/{id}", 834, 500, method="post")
        m.dashboard.endpoint("/api/health", 1.5, 200)
        m.dashboard.auth_failure("invalid_password", organization_id="o", ip="203.0.113.9")
        m.dashboard.auth_failure("expired_token")
        m.dashboard.database_error("select", error="connection refused")
        assert m.flush(WAIT)
        assert m.stats.invalid == 0
    after = int(time.time() * 1000)
    assert all(before <= e["timestamp"] <= after for e in server.events)
    assert all(isinstance(e["timestamp"], int) for e in server.events)
    assert without_timestamp(server.events) == [
        {
            "type": "payment.succeeded",
            "organization_id": "o",
            "amount": 2500,
            "currency": "usd",
            "duration_ms": 812.5,
        },
        {
            "type": "payment.failed",
            "organization_id": "o",
            "amount": 2500,
            "currency": "usd",
            "error": "Your card was declined.",
            "decline_code": "insufficient_funds",
            "failure_code": "card_declined",
        },
        {
            "type": "payment.timeout",
            "organization_id": "o",
            "duration_ms": 30000,
            "provider": "stripe",
        },
        {"type": "stripe.webhook_failed", "event_type": "charge.failed", "error": "boom"},
        {
            "type": "widget.loaded",
            "organization_id": "o",
            "widget_id": "w",
            "duration_ms": 1234,
            "url": "https://example.org/give",
        },
        {
            "type": "widget.load_error",
            "organization_id": "o",
            "widget_id": "w",
            "error": "timeout",
            "url": "https://example.org/give",
        },
        {
            "type": "widget.render_error",
            "organization_id": "o",
            "widget_id": "w",
            "error": "ValueError",
            "source": "render",
        },
        {
            "type": "widget.script_error",
            "organization_id": "o",
            "widget_id": "w",
            "error": "x is not defined",
            "source": "widget.js",
        },
        {
            "type": "traffic.request",
            "organization_id": "o",
            "path": "/give",
            "country": "US",
            "user_agent": "Mozilla/5.0",
            "ip": "203.0.113.9",
        },
        {
            "type": "endpoint.request",
            "route": "/api/donations/{id}",
            "method": "POST",
            "status": 500,
            "duration_ms": 834,
        },
        {
            "type": "endpoint.request",
            "route": "/api/health",
            "method": "GET",
            "status": 200,
            "duration_ms": 1.5,
        },
        {
            "type": "auth.failed",
            "reason": "invalid_password",
            "organization_id": "o",
            "ip": "203.0.113.9",
        },
        {"type": "auth.failed", "reason": "expired_token"},
        {"type": "database.error", "operation": "select", "error": "connection refused"},
    ]


def test_bad_arguments_are_counted_and_logged_never_raised(
    server: FakeExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="passiton.monitoring")
    with Monitoring(server.url, flush_interval=3600) as m:
        bad_calls = [
            lambda: m.payment.success(None),  # type: ignore[arg-type]
            lambda: m.payment.success(""),
            lambda: m.payment.success(123),  # type: ignore[arg-type]
            lambda: m.payment.success("o", amount=-1),
            lambda: m.payment.success("o", amount=12.5),
            lambda: m.payment.success("o", amount=True),  # type: ignore[arg-type]
            lambda: m.payment.success("o", duration_ms=float("nan")),
            lambda: m.payment.failure("o", error=object()),  # type: ignore[arg-type]
            lambda: m.payment.success(),  # type: ignore[call-arg]
            lambda: m.payment.success("o", bogus=1),  # type: ignore[call-arg]
            lambda: m.widget.loaded("o", "w", float("inf")),
            lambda: m.widget.loaded("o", "w", None),  # type: ignore[arg-type]
            lambda: m.dashboard.endpoint("/x", 1, 999),
            lambda: m.dashboard.endpoint("/x", 1, "200"),  # type: ignore[arg-type]
            lambda: m.dashboard.endpoint("/x", -1, 200),
            lambda: m.dashboard.auth_failure("r", organization_id=5),  # type: ignore[arg-type]
        ]
        for call in bad_calls:
            call()
        m.payment.success("good", amount=100.0)
        m.widget.script_error("o", "w", error="e" * 5000)
        assert m.flush(WAIT)
        assert m.stats.invalid == len(bad_calls)
    assert without_timestamp(server.events) == [
        {"type": "payment.succeeded", "organization_id": "good", "amount": 100},
        {
            "type": "widget.script_error",
            "organization_id": "o",
            "widget_id": "w",
            "error": "e" * MAX_TEXT,
        },
    ]
    assert "amount is in minor units" in caplog.text
    assert "missing 1 required positional argument" in caplog.text


def test_server_down_never_raises_and_counts_failed() -> None:
    with Monitoring(closed_port_url(), batch_size=2, max_retries=2, backoff=0.001) as m:
        for i in range(5):
            m.traffic.request(f"org-{i}")
        assert m.flush(WAIT)
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
    m.close(timeout=0.2)
    assert m.stats.failed == 1
    assert m.stats.queued == 0


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
        assert m.flush(WAIT)
        assert (m.stats.sent, m.stats.failed) == (0, 1)
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_other_than_429_are_not_retried(server: FakeExporter, status: int) -> None:
    server.script.extend([(status, {}), (202, {})])
    with Monitoring(server.url, backoff=0.001, flush_interval=3600) as m:
        m.traffic.request("o")
        m.traffic.request("o")
        assert m.flush(WAIT)
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
    config = ExporterConfig.from_env({"EXPORTER_INGEST_TOKEN": "ingest-token"})
    with ThreadedServer(create_app(config)) as exporter:
        with Monitoring(exporter.url, token="ingest-token", flush_interval=3600) as m:
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
            assert unauthorized.flush(WAIT)
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
