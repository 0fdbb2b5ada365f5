"""One test per signal family: the exact series an event produces."""

from __future__ import annotations

import pytest

from exporter.config import ExporterConfig
from exporter.events import EndpointRequest
from tests.exporter.support import make_app, make_recorder, series
from tests.exporter.support import post_events as post


async def test_widget_family(exporter):
    app, client = exporter
    await post(
        client,
        [
            {
                "type": "widget.loaded",
                "organization_id": "org-1",
                "widget_id": "w-1",
                "duration_ms": 800,
            },
            {
                "type": "widget.loaded",
                "organization_id": "org-1",
                "widget_id": "w-1",
                "duration_ms": 6500,
            },
            {
                "type": "widget.load_error",
                "organization_id": "org-1",
                "widget_id": "w-1",
                "error": "timeout",
                "url": "https://example.org/give?email=a@b.c",
            },
            {"type": "widget.render_error", "organization_id": "org-1", "widget_id": "w-2"},
            {
                "type": "widget.script_error",
                "organization_id": "org-1",
                "widget_id": "w-2",
                "error": "TypeError: x is undefined",
                "source": "https://cdn/x.js",
            },
        ],
    )
    assert series(app, "passiton_widget_loads_total") == {
        ("passiton_widget_loads_total", (("organization_id", "org-1"), ("widget_id", "w-1"))): 2,
    }
    assert series(app, "passiton_widget_errors_total") == {
        (
            "passiton_widget_errors_total",
            (("kind", "load"), ("organization_id", "org-1"), ("widget_id", "w-1")),
        ): 1,
        (
            "passiton_widget_errors_total",
            (("kind", "render"), ("organization_id", "org-1"), ("widget_id", "w-2")),
        ): 1,
        (
            "passiton_widget_errors_total",
            (("kind", "script"), ("organization_id", "org-1"), ("widget_id", "w-2")),
        ): 1,
    }
    buckets = series(app, "passiton_widget_load_duration_seconds_bucket")
    key = (
        "passiton_widget_load_duration_seconds_bucket",
        (("le", "5.0"), ("organization_id", "org-1")),
    )
    assert buckets[key] == 1  # the performance-timeout threshold is a bucket boundary
    assert (
        buckets[
            (
                "passiton_widget_load_duration_seconds_bucket",
                (("le", "+Inf"), ("organization_id", "org-1")),
            )
        ]
        == 2
    )


async def test_widget_timeout_threshold_is_configurable(aiohttp_client):
    app = make_app(widget_timeout_seconds=4.5)
    client = await aiohttp_client(app)
    await post(
        client,
        {"type": "widget.loaded", "organization_id": "o", "widget_id": "w", "duration_ms": 4400},
    )
    buckets = series(app, "passiton_widget_load_duration_seconds_bucket")
    assert (
        buckets[
            (
                "passiton_widget_load_duration_seconds_bucket",
                (("le", "4.5"), ("organization_id", "o")),
            )
        ]
        == 1
    )


async def test_traffic_family(exporter):
    app, client = exporter
    chrome = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    )
    await post(
        client,
        [
            {
                "type": "traffic.request",
                "organization_id": "org-1",
                "path": "/give",
                "country": "us",
                "user_agent": chrome,
                "ip": "203.0.113.9",
            },
            {
                "type": "traffic.request",
                "organization_id": "org-1",
                "country": "DE",
                "user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "ip": "66.249.66.1",
            },
            {
                "type": "traffic.request",
                "organization_id": "org-1",
                "country": "Narnia",
                "user_agent": "sqlmap/1.7",
                "ip": "198.51.100.7",
            },
            {"type": "traffic.request", "organization_id": "org-1"},
        ],
    )
    assert series(app, "passiton_traffic_requests_total") == {
        (
            "passiton_traffic_requests_total",
            (("client", "human"), ("country", "US"), ("organization_id", "org-1")),
        ): 1,
        (
            "passiton_traffic_requests_total",
            (("client", "bot"), ("country", "DE"), ("organization_id", "org-1")),
        ): 1,
        (
            "passiton_traffic_requests_total",
            (("client", "suspicious"), ("country", "other"), ("organization_id", "org-1")),
        ): 1,
        (
            "passiton_traffic_requests_total",
            (("client", "human"), ("country", "unknown"), ("organization_id", "org-1")),
        ): 1,
    }
    assert series(app, "passiton_traffic_window_requests") == {
        ("passiton_traffic_window_requests", ()): 3
    }
    assert series(app, "passiton_traffic_distinct_sources")[
        ("passiton_traffic_distinct_sources", ())
    ] == pytest.approx(3, abs=0.5)


async def test_source_concentration_shows_a_flood(exporter):
    app, client = exporter
    flood = [{"type": "traffic.request", "organization_id": "o", "ip": "198.51.100.66"}] * 900
    spread = [
        {"type": "traffic.request", "organization_id": "o", "ip": f"203.0.{i // 250}.{i % 250}"}
        for i in range(100)
    ]
    await post(client, flood + spread)
    values = series(app, "passiton_traffic_")
    # top 10 sources: the flooder (900) and 9 single-request sources, out of 1000
    assert values[("passiton_traffic_top_sources_ratio", ())] == pytest.approx(0.909)
    assert values[("passiton_traffic_distinct_sources", ())] == pytest.approx(101, rel=0.05)
    body = await (await client.get("/metrics")).text()
    assert "198.51.100.66" not in body


async def test_endpoint_and_dashboard_family(exporter):
    app, client = exporter
    await post(
        client,
        [
            {
                "type": "endpoint.request",
                "route": "/api/donations",
                "method": "POST",
                "status": 500,
                "duration_ms": 834,
            },
            {
                "type": "endpoint.request",
                "route": "/api/organizations/12345/widgets?x=1",
                "method": "get",
                "status": 200,
                "duration_ms": 20,
            },
            {
                "type": "auth.failed",
                "reason": "invalid_password",
                "organization_id": "org-1",
                "ip": "203.0.113.9",
            },
            {"type": "auth.failed", "reason": "The password was wrong for user bob@example.org"},
            {"type": "database.error", "operation": "insert", "error": "deadlock detected"},
        ],
    )
    counts = series(app, "passiton_endpoint_request_duration_seconds_count")
    assert counts == {
        (
            "passiton_endpoint_request_duration_seconds_count",
            (("method", "POST"), ("route", "/api/donations"), ("status_class", "5xx")),
        ): 1,
        (
            "passiton_endpoint_request_duration_seconds_count",
            (
                ("method", "GET"),
                ("route", "/api/organizations/:id/widgets"),
                ("status_class", "2xx"),
            ),
        ): 1,
        # a route's 5xx series exists at 0 from its first request, so that its first errors
        # show in rate() at the next scrape instead of starting a new series
        (
            "passiton_endpoint_request_duration_seconds_count",
            (
                ("method", "GET"),
                ("route", "/api/organizations/:id/widgets"),
                ("status_class", "5xx"),
            ),
        ): 0,
    }
    sums = series(app, "passiton_endpoint_request_duration_seconds_sum")
    assert sums[
        (
            "passiton_endpoint_request_duration_seconds_sum",
            (("method", "POST"), ("route", "/api/donations"), ("status_class", "5xx")),
        )
    ] == (pytest.approx(0.834))
    assert series(app, "passiton_auth_failures_total") == {
        ("passiton_auth_failures_total", (("reason", "invalid_password"),)): 1,
        ("passiton_auth_failures_total", (("reason", "other"),)): 1,
    }
    assert series(app, "passiton_database_errors_total") == {
        ("passiton_database_errors_total", (("operation", "insert"),)): 1,
    }


async def test_self_family(exporter):
    app, client = exporter
    await post(
        client,
        [
            {"type": "database.error", "operation": "select"},
            {"type": "database.error"},
            {"type": "no.such.type"},
        ],
    )
    accepted = series(app, "passiton_exporter_events_accepted_total")
    assert len(accepted) == 12  # every type's series exists from the start, at 0
    assert {k: v for k, v in accepted.items() if v} == {
        ("passiton_exporter_events_accepted_total", (("type", "database.error"),)): 1,
    }
    assert series(app, "passiton_exporter_events_rejected_total") == {
        (
            "passiton_exporter_events_rejected_total",
            (("reason", "missing_field"), ("type", "database.error")),
        ): 1,
        (
            "passiton_exporter_events_rejected_total",
            (("reason", "unknown_type"), ("type", "unknown")),
        ): 1,
    }
    latency = series(app, "passiton_exporter_ingest_duration_seconds_count")
    assert latency == {
        ("passiton_exporter_ingest_duration_seconds_count", (("endpoint", "events"),)): 1,
        ("passiton_exporter_ingest_duration_seconds_count", (("endpoint", "beacon"),)): 0,
        ("passiton_exporter_ingest_duration_seconds_count", (("endpoint", "stripe"),)): 0,
    }


def test_a_routes_5xx_series_exists_from_its_first_request_and_goes_with_it() -> None:
    now = [0.0]
    config = ExporterConfig(ingest_token="signals-token-0123456789", label_idle_seconds=60)
    recorder, registry = make_recorder(config, lambda: now[0])
    name = "passiton_endpoint_request_duration_seconds_count"
    errors = {"route": "/api/donations", "method": "GET", "status_class": "5xx"}
    ok = EndpointRequest(route="/api/donations", method="GET", status=200, duration_ms=5)
    recorder.record([ok])
    assert registry.get_sample_value(name, errors) == 0
    recorder.record(
        [EndpointRequest(route="/api/donations", method="GET", status=503, duration_ms=9)]
    )
    assert registry.get_sample_value(name, errors) == 1
    now[0] = 120.0
    recorder.expire_idle()  # the route idle for 120 s: forgotten with its series
    assert registry.get_sample_value(name, errors) is None
    recorder.record([ok])  # back: its 5xx series again, at 0
    assert registry.get_sample_value(name, errors) == 0
