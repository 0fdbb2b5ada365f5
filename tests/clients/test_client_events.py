"""The Python client against a fake exporter in another thread: batches in the background and
on flush, the contract event of every call, bad arguments counted and logged, never raised."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from passiton_monitoring_client import MAX_TEXT, Monitoring

from tests.clients.support import WAIT, FakeExporter, without_timestamp


@pytest.fixture
def server() -> Iterator[FakeExporter]:
    fake = FakeExporter()
    fake.start()
    yield fake
    fake.stop()


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
            payment_id="pi_3Nx",
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
            "payment_id": "pi_3Nx",
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
            "route": "/api/donations/:id",  # written in the one form, as the TS client does
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
            lambda: m.payment.failure("o", payment_id=""),
            lambda: m.payment.failure("o", payment_id="p" * 129),
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
