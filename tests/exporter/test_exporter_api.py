"""The exporter's HTTP contract: auth, content types, limits, per-event errors, beacon, health."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from exporter.app import PUBLIC, create_app
from exporter.classify import client_class
from exporter.config import ExporterConfig, LabelBounds
from exporter.events import EVENT_TYPES
from passiton_common.settings import ConfigError
from tests.exporter.support import all_samples, key_for, make_app, sample, series

PAYMENT = {"type": "payment.failed", "organization_id": "org-1", "amount": 100, "currency": "usd"}


async def test_token_required_and_compared(aiohttp_client):
    app = make_app(ingest_token="s3cret-token")
    client = await aiohttp_client(app)
    before = all_samples(app)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        response = await client.post("/v1/events", json=PAYMENT, headers=headers)
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized"
    after = all_samples(app)
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    assert changed == {
        (
            "passiton_exporter_events_rejected_total",
            (("reason", "unauthorized"), ("type", "unknown")),
        ): 3
    }
    ok = await client.post(
        "/v1/events", json=PAYMENT, headers={"Authorization": "Bearer s3cret-token"}
    )
    assert ok.status == 202
    assert (
        sample(app, "passiton_payment_attempts_total", organization_id="org-1", outcome="failed")
        == 1
    )


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"42", "application/json", 400, "invalid_json"),
        (b'"payment.failed"', "application/json", 400, "invalid_json"),
        (json.dumps(PAYMENT).encode(), "text/plain", 415, "unsupported_content_type"),
        (
            json.dumps(PAYMENT).encode(),
            "application/x-www-form-urlencoded",
            415,
            "unsupported_content_type",
        ),
        (json.dumps([PAYMENT] * 1001).encode(), "application/json", 413, "batch_too_large"),
        (
            b'{"type":"payment.failed","organization_id":"o","amount":1e999}',
            "application/json",
            400,
            "invalid_json",
        ),
        (
            b'{"type":"payment.failed","organization_id":"o","amount":NaN}',
            "application/json",
            400,
            "invalid_json",
        ),
    ],
)
async def test_bad_bodies_are_rejected_whole(aiohttp_client, body, content_type, status, reason):
    app = make_app()
    client = await aiohttp_client(app)
    before = all_samples(app)
    response = await client.post("/v1/events", data=body, headers={"Content-Type": content_type})
    assert response.status == status
    payload = await response.json()
    assert payload["error"] == reason
    assert payload["message"]
    changed = {k: v for k, v in all_samples(app).items() if before.get(k) != v}
    assert changed == {
        ("passiton_exporter_events_rejected_total", (("reason", reason), ("type", "unknown"))): 1
    }


async def test_body_over_limit_is_413(aiohttp_client):
    app = make_app(max_body_bytes=1000)
    client = await aiohttp_client(app)
    response = await client.post("/v1/events", json=[PAYMENT] * 50)
    assert response.status == 413
    assert (await response.json())["error"] == "too_large"
    assert (
        sample(app, "passiton_payment_attempts_total", organization_id="org-1", outcome="failed")
        == 0
    )


@pytest.mark.parametrize(
    ("event", "reason", "where"),
    [
        ({"type": "payment.failed"}, "missing_field", "organization_id"),
        (
            {"type": "payment.failed", "organization_id": "o", "amount": -5},
            "out_of_range",
            "amount",
        ),
        (
            {"type": "payment.failed", "organization_id": "o", "amount": "5"},
            "invalid_type",
            "amount",
        ),
        (
            {"type": "payment.failed", "organization_id": "o", "amount": 1.5},
            "invalid_type",
            "amount",
        ),
        (
            {"type": "widget.loaded", "organization_id": "o", "widget_id": "w", "duration_ms": -1},
            "out_of_range",
            "duration_ms",
        ),
        (
            {
                "type": "endpoint.request",
                "route": "/",
                "method": "GET",
                "status": 99,
                "duration_ms": 1,
            },
            "out_of_range",
            "status",
        ),
        (
            {
                "type": "endpoint.request",
                "route": "/",
                "method": "GET",
                "status": True,
                "duration_ms": 1,
            },
            "invalid_type",
            "status",
        ),
        ({"type": "traffic.request", "organization_id": "o" * 129}, "too_long", "organization_id"),
        (
            {"type": "payment.failed", "organization_id": "o", "error": "x" * 2049},
            "too_long",
            "error",
        ),
        ({"type": "payment.failed", "organization_id": ""}, "too_long", "organization_id"),
        ({"type": "nope"}, "unknown_type", "type"),
        ({"organization_id": "o"}, "unknown_type", "type"),
    ],
)
async def test_single_invalid_event_is_400_naming_the_field(aiohttp_client, event, reason, where):
    app = make_app()
    client = await aiohttp_client(app)
    before = all_samples(app)
    response = await client.post("/v1/events", json=event)
    assert response.status == 400
    payload = await response.json()
    assert payload["rejected"] == 1
    assert payload["accepted"] == 0
    assert payload["errors"][0]["index"] == 0
    assert payload["error"] == reason, payload
    assert where in payload["message"]
    changed = {k: v for k, v in all_samples(app).items() if before.get(k) != v}
    type_label = event["type"] if event.get("type") in EVENT_TYPES else "unknown"
    assert changed == {
        ("passiton_exporter_events_rejected_total", (("reason", reason), ("type", type_label))): 1
    }


async def test_batch_rejects_invalid_events_one_by_one(aiohttp_client):
    app = make_app()
    client = await aiohttp_client(app)
    response = await client.post(
        "/v1/events",
        json=[PAYMENT, {"type": "payment.failed"}, 7, PAYMENT, {"type": "widget.loaded"}],
    )
    assert response.status == 202
    payload = await response.json()
    assert payload["accepted"] == 2
    assert payload["rejected"] == 3
    assert [(e["index"], e["reason"]) for e in payload["errors"]] == [
        (1, "missing_field"),
        (2, "not_an_object"),
        (4, "missing_field"),
    ]
    assert (
        sample(app, "passiton_payment_attempts_total", organization_id="org-1", outcome="failed")
        == 2
    )


async def test_unknown_fields_are_ignored_and_timestamp_accepted(aiohttp_client):
    app = make_app()
    client = await aiohttp_client(app)
    response = await client.post(
        "/v1/events", json={**PAYMENT, "timestamp": 1_764_000_000_000, "whatever": {"a": 1}}
    )
    assert response.status == 202


async def test_health_ready_openapi_and_beacon_js(aiohttp_client):
    app = make_app()
    client = await aiohttp_client(app)
    public = await aiohttp_client(app[PUBLIC])
    for c in (client, public):
        assert (await c.get("/-/healthy")).status == 200
        assert (await c.get("/-/ready")).status == 200
    doc = await (await client.get("/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {"/v1/events", "/v1/beacon", "/v1/stripe/webhook"}
    script = await public.get("/v1/beacon.js")
    assert script.status == 200
    assert script.content_type == "application/javascript"
    assert "sendBeacon" in await script.text()


async def test_each_listener_serves_only_its_own_endpoints(aiohttp_client):
    app = make_app()
    internal = await aiohttp_client(app)
    public = await aiohttp_client(app[PUBLIC])
    for path in ("/v1/beacon", "/v1/stripe/webhook"):
        assert (await internal.post(path, data="[]")).status == 404
    assert (await internal.get("/v1/beacon.js")).status == 404
    assert (await public.post("/v1/events", json=PAYMENT)).status == 404
    assert (await public.get("/metrics")).status == 404
    assert (await public.get("/v1/openapi.json")).status == 404


def test_refuses_to_start_without_a_token_outside_development():
    with pytest.raises(ConfigError, match="EXPORTER_INGEST_TOKEN"):
        create_app(ExporterConfig())
    create_app(ExporterConfig(ingest_token="a-token-for-this-test"))
    create_app(ExporterConfig(development=True))


async def test_without_a_token_events_are_refused_unless_development(aiohttp_client):
    production = await aiohttp_client(make_app(development=False, ingest_token="t0ken-of-tests"))
    assert (await production.post("/v1/events", json=PAYMENT)).status == 401
    development = await aiohttp_client(make_app())
    assert (await development.post("/v1/events", json=PAYMENT)).status == 202


async def test_beacon_accepts_text_plain_widget_events_only(aiohttp_client):
    app = make_app(cors_origins=("https://donate.example.org",))
    client = await aiohttp_client(app[PUBLIC])
    body = json.dumps(
        [
            {"type": "widget.loaded", "organization_id": "o", "widget_id": "w", "duration_ms": 900},
            {"type": "payment.failed", "organization_id": "o"},
            {"type": "traffic.request", "organization_id": "o", "ip": "198.51.100.1"},
        ]
    )
    response = await client.post(
        f"/v1/beacon?key={key_for('o', 'w')}",
        data=body,
        headers={
            "Content-Type": "text/plain;charset=UTF-8",
            "Origin": "https://donate.example.org",
        },
    )
    assert response.status == 202
    assert response.headers["Access-Control-Allow-Origin"] == "https://donate.example.org"
    payload = await response.json()
    assert payload["accepted"] == 1
    assert [e["reason"] for e in payload["errors"]] == ["type_not_allowed"] * 2
    assert sample(app, "passiton_widget_loads_total", organization_id="o", widget_id="w") == 1
    assert (
        sample(app, "passiton_payment_attempts_total", organization_id="o", outcome="failed") == 0
    )
    assert sample(app, "passiton_traffic_window_requests") == 0


async def test_beacon_cors(aiohttp_client):
    app = make_app(cors_origins=("https://donate.example.org",))
    client = await aiohttp_client(app[PUBLIC])
    ok = await client.options("/v1/beacon", headers={"Origin": "https://donate.example.org"})
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://donate.example.org"
    denied = await client.post(
        f"/v1/beacon?key={key_for('o', 'w')}",
        data="[]",
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )
    assert denied.status == 403
    assert "Access-Control-Allow-Origin" not in denied.headers


async def test_beacon_rate_limited_per_client(aiohttp_client):
    app = make_app(beacon_rate_per_minute=5)
    client = await aiohttp_client(app[PUBLIC])
    event = {"type": "widget.script_error", "organization_id": "o", "widget_id": "w"}
    statuses = []
    for _ in range(8):
        response = await client.post(f"/v1/beacon?key={key_for('o', 'w')}", json=event)
        statuses.append(response.status)
    assert statuses == [202] * 5 + [429] * 3
    assert sample(app, "passiton_exporter_beacon_rate_limited_total", limit="client") == 3
    assert (
        sample(
            app, "passiton_widget_errors_total", organization_id="o", widget_id="w", kind="script"
        )
        == 5
    )


async def test_distinct_organizations_stay_under_the_bound(aiohttp_client):
    bound = 500
    app = make_app(bounds=LabelBounds(organization_id=bound))
    client = await aiohttp_client(app)
    for start in range(0, 100_000, 1000):
        batch = [
            {"type": "payment.succeeded", "organization_id": f"org-{i}"}
            for i in range(start, start + 1000)
        ]
        response = await client.post("/v1/events", json=batch)
        assert response.status == 202
    attempts = series(app, "passiton_payment_attempts_total")
    assert len(attempts) == bound + 1  # the admitted organizations and `other`
    other = (
        "passiton_payment_attempts_total",
        (("organization_id", "other"), ("outcome", "succeeded")),
    )
    assert attempts[other] == 100_000 - bound
    assert sample(app, "passiton_exporter_label_overflow_total", label="organization_id") == (
        100_000 - bound
    )
    assert sample(app, "passiton_exporter_label_values", label="organization_id") == bound


async def test_promtool_finds_nothing_in_metrics(aiohttp_client, tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (apt-get install prometheus)"
    app = make_app()
    client = await aiohttp_client(app)
    await client.post(
        "/v1/events",
        json=[
            PAYMENT,
            {"type": "payment.succeeded", "organization_id": "o", "duration_ms": 10},
            {"type": "widget.loaded", "organization_id": "o", "widget_id": "w", "duration_ms": 10},
            {
                "type": "endpoint.request",
                "route": "/x",
                "method": "GET",
                "status": 200,
                "duration_ms": 3,
            },
            {"type": "traffic.request", "organization_id": "o", "ip": "198.51.100.1"},
        ],
    )
    text = await (await client.get("/metrics")).text()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_client_classes():
    assert client_class(None) == "human"
    assert client_class("") == "suspicious"
    assert client_class("curl/8.0.1") == "suspicious"
    assert (
        client_class("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")
        == "bot"
    )
