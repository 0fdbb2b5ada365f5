"""Bad input, property-based: whatever arrives, a precise 4xx (per event in a batch) and no metric
changes but the rejection counters. Plus schemathesis against the served OpenAPI document."""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection

from exporter.config import ExporterConfig
from exporter.events import EVENT_CLASSES, EVENT_TYPES
from tests.exporter.live import live_exporter
from tests.exporter.support import BEACON_SECRET, all_samples

REJECTION_COUNTERS = (
    "passiton_exporter_events_rejected_total",
    "passiton_exporter_beacon_key_rejections_total",
)
TOKEN = "prop-token"


@pytest.fixture(scope="module")
def live():
    config = ExporterConfig(
        ingest_token=TOKEN,
        cors_origins=("*",),
        beacon_rate_per_minute=100_000,
        beacon_secret=BEACON_SECRET,
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        live_exporter(config) as exporter,
        httpx.Client(base_url=exporter.internal, headers=auth) as client,
    ):
        yield exporter, exporter.app, client


def metric_changes(before: dict, after: dict) -> dict:
    return {k: v for k, v in after.items() if before.get(k) != v and k[0] not in REJECTION_COUNTERS}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


VALID = {
    "payment.succeeded": {
        "organization_id": "o",
        "amount": 100,
        "currency": "usd",
        "duration_ms": 5,
    },
    "payment.failed": {
        "organization_id": "o",
        "amount": 100,
        "currency": "usd",
        "error": "declined",
        "decline_code": "generic_decline",
        "failure_code": "card_declined",
    },
    "payment.timeout": {"organization_id": "o", "duration_ms": 30000, "provider": "stripe"},
    "stripe.webhook_failed": {"event_type": "charge.failed", "error": "timeout"},
    "widget.loaded": {"organization_id": "o", "widget_id": "w", "duration_ms": 100, "url": "u"},
    "widget.load_error": {
        "organization_id": "o",
        "widget_id": "w",
        "error": "e",
        "url": "u",
        "source": "s",
    },
    "widget.render_error": {"organization_id": "o", "widget_id": "w", "error": "e"},
    "widget.script_error": {"organization_id": "o", "widget_id": "w", "error": "e"},
    "traffic.request": {
        "organization_id": "o",
        "path": "/",
        "country": "US",
        "user_agent": "ua",
        "ip": "198.51.100.1",
    },
    "endpoint.request": {"route": "/x", "method": "GET", "status": 200, "duration_ms": 3},
    "auth.failed": {"reason": "invalid_password", "organization_id": "o", "ip": "198.51.100.1"},
    "database.error": {"operation": "select", "error": "e"},
}
assert set(VALID) == set(EVENT_TYPES)

# Wrong for every field of every type: negative, boolean, container, or oversized.
BAD_VALUES = st.sampled_from([-1, -0.5, True, [], {}, "x" * 3000, 1e30])


@st.composite
def broken_event(draw):
    """A valid event with one field made wrong: dropped when required, or given a bad value."""
    event_type = draw(st.sampled_from(EVENT_TYPES))
    event = {"type": event_type, **VALID[event_type]}
    cls = next(c for c in EVENT_CLASSES if c.__struct_config__.tag == event_type)
    required = [
        f
        for f in cls.__struct_fields__
        if f
        not in dict(zip(cls.__struct_fields__[::-1], cls.__struct_defaults__[::-1], strict=False))
    ]
    field = draw(st.sampled_from(sorted(VALID[event_type])))
    if field in required and draw(st.booleans()):
        del event[field]
        return event, field
    event[field] = draw(BAD_VALUES)
    return event, field


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=broken_event())
def test_a_broken_event_is_rejected_naming_its_field(live, case):
    _, app, client = live
    event, field = case
    before = all_samples(app)
    response = client.post("/v1/events", json=event)
    assert response.status_code == 400, (event, response.text)
    payload = response.json()
    assert payload["rejected"] == 1
    assert f"`{field}`" in payload["message"] or f"$.{field}" in payload["message"], payload
    assert metric_changes(before, all_samples(app)) == {}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.lists(
        st.one_of(
            st.builds(lambda t: {"type": t, **VALID[t]}, st.sampled_from(EVENT_TYPES)),
            broken_event().map(lambda c: c[0]),
            json_values,
        ),
        max_size=8,
    )
)
def test_a_batch_accepts_exactly_the_valid_events(live, batch):
    _, _app, client = live
    response = client.post("/v1/events", json=batch)
    assert response.status_code == 202, response.text
    payload = response.json()
    assert payload["accepted"] + payload["rejected"] == len(batch)
    assert [e["index"] for e in payload["errors"]] == sorted(
        {e["index"] for e in payload["errors"]}
    )
    for error in payload["errors"]:
        assert error["reason"]
        assert error["message"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_arbitrary_bodies_never_break_the_server(live, body):
    _, app, client = live
    before = all_samples(app)
    response = client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (202, 400, 413), response.text
    payload = response.json()
    if response.status_code == 400:
        assert payload["error"]
        assert payload["message"]
        assert metric_changes(before, all_samples(app)) == {}
    if response.status_code == 202 and payload["accepted"] == 0:
        assert metric_changes(before, all_samples(app)) == {}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("path", ["/v1/events", "/v1/beacon"])
def test_openapi_contract(live, path, mode):
    """schemathesis drives the served document: valid and invalid bodies, every response checked."""
    exporter, app, _ = live
    schema = schemathesis.openapi.from_url(f"{exporter.internal}/v1/openapi.json")
    url = exporter.internal if path == "/v1/events" else exporter.public
    operation = schema["/v1/events" if path == "/v1/events" else "/v1/beacon"]["POST"]
    headers = {"Authorization": f"Bearer {TOKEN}"}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        before = all_samples(app)
        response = case.call(base_url=url, headers=headers)
        # A batch is answered 202 with its invalid events rejected one by one (the contract), so
        # schemathesis's "negative data must get a 4xx" holds for single events only.
        excluded = [negative_data_rejection] if isinstance(case.body, list) else []
        case.validate_response(response, headers=headers, excluded_checks=excluded)
        assert response.status_code < 500
        if 400 <= response.status_code < 500 and response.status_code != 429:
            assert metric_changes(before, all_samples(app)) == {}

    check()
