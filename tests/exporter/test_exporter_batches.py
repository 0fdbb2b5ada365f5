"""A batch recorded by label set (``exporter/batches.py``) ends where recording its events one at a
time ends: counters, histograms, the failure streak in the batch's order, label and series-budget
overflows per event, the source window's counts. And the two shortcuts it uses, bucketed
histogram observations and a batch's addresses counted at once, equal their one-by-one forms."""

from __future__ import annotations

import json
import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from exporter.app import RECORDER, REGISTRY, create_app
from exporter.config import ExporterConfig, LabelBounds
from exporter.events import decode_events
from exporter.series import observe_many
from exporter.sources import SourceWindow

TOKEN = "batches-token-0123456789"


def _mixed_batch(rng: random.Random, n: int) -> list[dict]:
    orgs = [f"org-{i}" for i in range(6)]
    kinds = [
        lambda: {"type": "payment.succeeded", "organization_id": rng.choice(orgs)},
        lambda: {
            "type": "payment.failed",
            "organization_id": rng.choice(orgs),
            "failure_code": rng.choice(["processing_error", None]),
            "decline_code": rng.choice(["expired_card", None]),
            "amount": rng.choice([None, 250, 1999]),
            "currency": rng.choice(["usd", "jpy", "xxx", None]),
            "duration_ms": rng.choice([None, 120.0, 2500.0, 61000.0]),
        },
        lambda: {
            "type": "payment.timeout",
            "organization_id": rng.choice(orgs),
            "provider": rng.choice(["stripe", "Some Provider", None]),
            "duration_ms": 30000,
        },
        lambda: {
            "type": "widget.loaded",
            "organization_id": rng.choice(orgs),
            "widget_id": rng.choice(["w-1", "w-2", "w-3"]),
            "duration_ms": rng.choice([100, 250, 4999, 5000, 30000]),
        },
        lambda: {
            "type": rng.choice(["widget.load_error", "widget.render_error"]),
            "organization_id": rng.choice(orgs),
            "widget_id": rng.choice(["w-1", "w-4"]),
        },
        lambda: {
            "type": "traffic.request",
            "organization_id": rng.choice(orgs),
            "country": rng.choice(["US", "de", "??"]),
            "user_agent": rng.choice(["Mozilla/5.0 (X11; Linux) Firefox/120", "curl/8.0", None]),
            "ip": rng.choice(["203.0.113.1", "203.0.113.2", "2001:db8::1", "2001:db8::2", ""]),
        },
        lambda: {
            "type": "endpoint.request",
            "route": rng.choice(["/api/orgs/123", "/api/donations", "/x/" + "a" * 40]),
            "method": rng.choice(["GET", "post"]),
            "status": rng.choice([200, 404, 503]),
            "duration_ms": rng.choice([3, 40, 900, 12000]),
        },
        lambda: {"type": "auth.failed", "reason": rng.choice(["bad_password", "A sentence."])},
        lambda: {"type": "database.error", "operation": rng.choice(["select", "insert"])},
        lambda: {
            "type": "stripe.webhook_failed",
            "event_type": "charge.failed",
            "error": "timeout",
        },
    ]
    return [{k: v for k, v in rng.choice(kinds)().items() if v is not None} for _ in range(n)]


def _exposition(app) -> dict[str, float]:
    """Every sample but the loop lag's and the traffic window's gauges (their clocks differ)."""
    text = generate_latest(app[REGISTRY]).decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("passiton_") and "lag" not in line and "traffic_" not in line:
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples


def test_a_batch_by_label_set_ends_where_its_events_one_by_one_end() -> None:
    # small bounds and budgets, so that overflows happen and are counted per event
    config = ExporterConfig(
        ingest_token=TOKEN,
        bounds=LabelBounds(organization_id=4, widget_id=2, route=2),
        max_series_per_metric=6,
    )
    rng = random.Random(18)
    for _ in range(5):
        body = json.dumps(_mixed_batch(rng, 300)).encode()
        events, rejected, _ = decode_events(body, 1000)
        assert not rejected
        batched, one_by_one = create_app(config), create_app(config)
        batched[RECORDER].record(events)
        for event in events:
            one_by_one[RECORDER].record([event])
        # sums of amounts and durations may differ in the last bits (summed before added)
        assert _exposition(batched) == pytest.approx(_exposition(one_by_one), rel=1e-12)
        # the source window counts the same requests from the same sources
        assert batched[RECORDER].sources.added == one_by_one[RECORDER].sources.added


def test_a_success_between_failures_of_one_batch_counts_in_order() -> None:
    app = create_app(ExporterConfig(ingest_token=TOKEN))
    fail = {"type": "payment.failed", "organization_id": "o", "failure_code": "processing_error"}
    ok = {"type": "payment.succeeded", "organization_id": "o"}
    other = {**fail, "organization_id": "p"}
    for batch, expected in (
        ([fail, fail, ok, fail, other, fail], {"o": 2, "p": 1}),
        ([ok, other], {"o": 0, "p": 2}),
        ([fail, fail], {"o": 2, "p": 2}),
    ):
        events, _, _ = decode_events(json.dumps(batch).encode(), 100)
        app[RECORDER].record(events)
        text = generate_latest(app[REGISTRY]).decode()
        for org, value in expected.items():
            line = f'passiton_payment_consecutive_failures{{organization_id="{org}"}} {value}.0'
            assert line in text


def test_bucketed_observations_equal_one_by_one_observations() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("h", "h", ["k"], registry=registry, buckets=(0.1, 0.25, 1.0, 5.0))
    rng = random.Random(7)
    values = [rng.choice([0.0, 0.1, 0.25, 1.0, 5.0, 7.5]) for _ in range(200)]
    values += [rng.random() * 6 for _ in range(200)]
    for value in values:
        histogram.labels("one").observe(value)
    observe_many(histogram.labels("many"), values)
    samples = {
        (s.name, s.labels.get("le")): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.labels.get("k") == "one"
    }
    bucketed = {
        (s.name, s.labels.get("le")): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.labels.get("k") == "many"
    }
    assert bucketed.keys() == samples.keys()
    for key, value in samples.items():
        assert bucketed[key] == (value if not key[0].endswith("_sum") else bucketed[key])
    assert abs(bucketed[("h_sum", None)] - samples[("h_sum", None)]) < 1e-9


def test_a_batch_of_addresses_counted_at_once_equals_one_at_a_time() -> None:
    """Misra-Gries included: a full summary, newcomers decrementing everyone."""
    rng = random.Random(3)
    sources = [f"198.51.100.{rng.randrange(40)}" for _ in range(500)]
    counts: dict[str, int] = {}
    for source in sources:
        counts[source] = counts.get(source, 0) + 1
    at_once = SourceWindow(capacity=8, clock=lambda: 100.0)
    one_by_one = SourceWindow(capacity=8, clock=lambda: 100.0)
    one_by_one._salt = at_once._salt  # the same keyed hash
    at_once.add_counts(counts)
    for source, count in counts.items():  # the same order, one request at a time
        for _ in range(count):
            one_by_one.add(source)
    assert at_once.snapshot() == one_by_one.snapshot()
    assert at_once._slots[-1].counts == one_by_one._slots[-1].counts


def test_distinct_sources_are_exact_until_the_summary_drops_one() -> None:
    """Under the summary's capacity its keys are every source: an exact count (the sketch's
    register collisions once counted 3 sources as 2). Past it, the HyperLogLog estimate."""
    few = SourceWindow(capacity=8, clock=lambda: 100.0)
    few.add_counts({f"198.51.100.{i}": i + 1 for i in range(8)})
    assert few.snapshot()[2] == 8.0
    many = SourceWindow(capacity=8, clock=lambda: 100.0)
    many.add_counts({f"203.0.113.{i}": 1 for i in range(200)} | {"198.51.100.1": 50})
    total, _, distinct = many.snapshot()
    assert total == 250
    assert distinct == pytest.approx(201, rel=0.1)
    assert distinct != len(many._slots[-1].counts)  # the sketch's, not the summary's 8
