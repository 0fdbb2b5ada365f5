"""The demo's traffic through the real Python client into a real exporter, in simulated time:
what a newcomer is promised (countries, bots, organizations, widgets, API calls, payments) and
the shape of a payment burst (one organization far above the critical per-organization ratio,
the platform below the platform-wide one whose alert would inhibit it), at any time of day."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from passiton_monitoring_client import Monitoring
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import ExporterConfig
from passiton_monitoring.stack.demo import ORGANIZATIONS, Burst, DemoTraffic, daily_load, schedule
from tests import plain_http
from tests.exporter.live import running_exporter

DAY = 1800.0


def _samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    text = plain_http.get(f"{url}/metrics", timeout=10).text
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def _simulate(burst: Burst | None, start: float, seconds: float, *, seed: int = 1) -> dict:
    """Drive ``seconds`` of demo traffic from ``start`` into a fresh exporter; its metrics."""
    with running_exporter(ExporterConfig(development=True)) as (url, _):
        monitoring = Monitoring(url, flush_interval=0.1)
        traffic = DemoTraffic(
            monitoring,
            rng=random.Random(seed),
            day_seconds=DAY,
            bursts=[] if burst is None else [burst],
        )
        elapsed = start
        while elapsed < start + seconds:
            traffic.tick(elapsed, 0.5)
            elapsed += 0.5
        assert monitoring.flush(30)
        stats = monitoring.stats
        monitoring.close()
        assert stats.rejected == 0
        assert stats.invalid == 0
        return {
            "attempts": _samples(url, "passiton_payment_attempts_total"),
            "traffic": _samples(url, "passiton_traffic_requests_total"),
            "widgets": _samples(url, "passiton_widget_loads_total"),
            "widget_errors": _samples(url, "passiton_widget_errors_total"),
            "endpoints": _samples(url, "passiton_endpoint_request_duration_seconds_count"),
        }


def _ratios(attempts: list[tuple[dict[str, str], float]], org: str) -> tuple[float, float, float]:
    per_org: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for labels, value in attempts:
        per_org[labels["organization_id"]][1] += value
        if labels["outcome"] != "succeeded":
            per_org[labels["organization_id"]][0] += value
    failed = sum(f for f, _ in per_org.values())
    total = sum(t for _, t in per_org.values())
    org_failed, org_total = per_org[org]
    return org_failed / org_total, failed / total, org_failed


def test_a_quiet_minute_has_every_kind_of_signal() -> None:
    metrics = _simulate(None, 600.0, 60.0)
    countries = {labels["country"] for labels, v in metrics["traffic"] if v}
    clients = {labels["client"] for labels, v in metrics["traffic"] if v}
    orgs = {labels["organization_id"] for labels, v in metrics["traffic"] if v}
    assert len(countries - {"unknown", "other"}) >= 6
    assert {"human", "bot", "suspicious"} <= clients
    assert orgs == {org for org, _ in ORGANIZATIONS}
    assert sum(v for _, v in metrics["widgets"]) > 50
    assert sum(v for _, v in metrics["endpoints"]) > 100
    routes = {labels["route"] for labels, v in metrics["endpoints"] if v}
    assert len(routes) >= 4
    org_ratio, platform_ratio, _ = _ratios(metrics["attempts"], "animal-rescue")
    assert org_ratio < 0.5
    assert platform_ratio < 0.1


def _hour_of_lowest_load() -> float:
    return min((t * 10.0 for t in range(int(DAY / 10))), key=lambda t: daily_load(t, DAY))


@pytest.mark.parametrize(
    "burst",
    [b for b in schedule(cycles=3) if b.kind == "payments"],
    ids=lambda b: b.organization_id,
)
@pytest.mark.parametrize("when", ["first", "night"])
def test_a_payment_burst_fails_one_organization_not_the_platform(burst: Burst, when: str) -> None:
    start = burst.start if when == "first" else _hour_of_lowest_load()
    shifted = Burst(burst.kind, burst.organization_id, start, burst.duration, burst.expect)
    metrics = _simulate(shifted, start, 60.0, seed=1 if when == "first" else 2)
    org_ratio, platform_ratio, org_failed = _ratios(metrics["attempts"], burst.organization_id)
    # the critical per-organization rule: ratio over 1m > 0.5 and at least 5 failures a minute
    assert org_ratio > 0.6
    assert org_failed >= 8
    # the critical platform-wide rule (ratio over 1m > 0.5) must stay quiet
    assert platform_ratio < 0.45


def test_the_first_burst_comes_early_enough_for_the_two_minute_promise() -> None:
    first = schedule()[0]
    assert first.kind == "payments"
    assert first.start <= 15
    assert first.duration >= 120  # outlasts the rule's `for` plus scrape and evaluation delays
