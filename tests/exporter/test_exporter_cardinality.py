"""Cardinality that cannot be squatted: idle label values are forgotten with their series, a
per-metric series budget, and payment organizations admitted from authenticated sources only."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from exporter.app import PUBLIC
from exporter.config import LabelBounds
from exporter.labels import OTHER, BoundedLabel, Clock
from exporter.metrics import ExporterMetrics
from tests.exporter.support import key_for, make_app, sample, series


def label(limit: int, idle: float | None) -> tuple[BoundedLabel, Clock, list[set[str]]]:
    metrics = ExporterMetrics.create(CollectorRegistry())
    clock = Clock()
    clock.now = 0.0
    forgotten: list[set[str]] = []
    bounded = BoundedLabel(
        "organization_id",
        limit,
        metrics.label_overflow,
        metrics.label_values,
        expired=metrics.label_expired,
        idle_seconds=idle,
        clock=clock,
    )
    bounded.on_expire = forgotten.append
    return bounded, clock, forgotten


def test_a_value_that_keeps_arriving_is_never_evicted_by_newcomers():
    org, clock, forgotten = label(3, idle=60)
    assert [org(v) for v in ("real", "j1", "j2")] == ["real", "j1", "j2"]
    for t in range(1, 60):
        clock.now = float(t)
        assert org("real") == "real"
        assert org(f"junk-{t}") == OTHER  # full: every newcomer folds while nothing is idle
    assert forgotten == []
    clock.now = 60.0  # j1 and j2 unseen for 60 s: the next newcomer takes a freed slot
    assert org("newcomer") == "newcomer"
    assert forgotten == [{"j1", "j2"}]
    assert "real" in org
    assert len(org) == 2


def test_without_idle_time_the_first_values_stay_and_nothing_expires():
    org, clock, forgotten = label(2, idle=None)
    org("a")
    org("b")
    clock.now = 10**9
    assert org("c") == OTHER
    assert org.expire() == set()
    assert forgotten == []


async def test_idle_values_lose_their_series_and_free_their_slot(aiohttp_client):
    app = make_app(bounds=LabelBounds(organization_id=3), label_idle_seconds=0.3)
    client = await aiohttp_client(app)
    events = [{"type": "payment.succeeded", "organization_id": o} for o in ("a", "b", "c")]
    assert (await client.post("/v1/events", json=events)).status == 202
    assert len(series(app, "passiton_payment_attempts_total")) == 3
    await asyncio.sleep(0.4)
    await client.post("/v1/events", json=events[:1])  # "a" is still sending
    text = await (await client.get("/metrics")).text()  # a scrape forgets the idle values
    assert 'organization_id="a"' in text
    assert 'organization_id="b"' not in text
    assert 'organization_id="c"' not in text
    assert sample(app, "passiton_exporter_label_expired_total", label="organization_id") == 2
    assert sample(app, "passiton_exporter_label_values", label="organization_id") == 1
    response = await client.post("/v1/events", json=[{**events[0], "organization_id": "d"}])
    assert response.status == 202
    assert sample(app, "passiton_payment_attempts_total", organization_id="d", outcome="succeeded")


async def test_the_series_budget_folds_new_combinations_into_other(aiohttp_client):
    app = make_app(bounds=LabelBounds(organization_id=100, widget_id=100), max_series_per_metric=10)
    client = await aiohttp_client(app)
    events = [
        {"type": "widget.load_error", "organization_id": f"o{i}", "widget_id": f"w{j}"}
        for i in range(10)
        for j in range(10)
    ]
    assert (await client.post("/v1/events", json=events)).status == 202
    errors = series(app, "passiton_widget_errors_total")
    assert len(errors) == 11  # the budget and one all-`other` series
    assert sum(errors.values()) == 100
    assert (
        sample(
            app, "passiton_exporter_series_budget_overflow_total", metric="passiton_widget_errors"
        )
        == 90
    )


async def test_beacons_cannot_fill_the_payment_organizations(aiohttp_client):
    app = make_app(bounds=LabelBounds(organization_id=5))
    internal = await aiohttp_client(app)
    public = await aiohttp_client(app[PUBLIC])
    for i in range(20):
        org = f"beacon-org-{i}"
        event = {"type": "widget.script_error", "organization_id": org, "widget_id": "w"}
        response = await public.post(f"/v1/beacon?key={key_for(org, 'w')}", json=event)
        assert response.status == 202
    payment = {"type": "payment.failed", "organization_id": "org-pays", "amount": 100}
    assert (await internal.post("/v1/events", json=payment)).status == 202
    assert (
        sample(app, "passiton_payment_attempts_total", organization_id="org-pays", outcome="failed")
        == 1
    )
    assert sample(app, "passiton_exporter_label_values", label="organization_id") == 1
    assert sample(app, "passiton_exporter_label_values", label="widget_organization_id") == 5
