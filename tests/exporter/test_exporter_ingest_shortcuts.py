"""The shortcuts of the single-event ingest path (benchmarks/exporter_ingest.py) count what the
long way counts: a failed payment's resolved series are not kept past the series' removal, a
series folded by its budget still counts its overflows on every request, the whole-header token
comparison accepts and refuses what the parsed one does, and a body read at once is still bounded
after decompression."""

from __future__ import annotations

import gzip
import json

import pytest
from prometheus_client import CollectorRegistry

from exporter.config import ExporterConfig, LabelBounds
from exporter.events import PaymentFailed
from exporter.recorder import Recorder
from tests.exporter.support import make_app, make_recorder, sample

TOKEN = "shortcuts-token-0123456789"
FAILED = "passiton_payment_failures_total"
ATTEMPTS = "passiton_payment_attempts_total"


def _recorder(config: ExporterConfig, now: list[float]) -> tuple[Recorder, CollectorRegistry]:
    return make_recorder(config, lambda: now[0])


def _failed(org: str) -> PaymentFailed:
    return PaymentFailed(organization_id=org, decline_code="insufficient_funds", amount=300)


def test_a_forgotten_organization_counts_again_from_a_new_series() -> None:
    now = [0.0]
    config = ExporterConfig(ingest_token=TOKEN, label_idle_seconds=60)
    recorder, registry = _recorder(config, now)
    labels = {"organization_id": "org-a", "outcome": "failed"}
    for _ in range(3):
        recorder.record([_failed("org-a")])
    assert registry.get_sample_value(ATTEMPTS, labels) == 3
    now[0] = 120.0
    recorder.expire_idle()  # org-a idle for 120 s: forgotten with its series
    assert registry.get_sample_value(ATTEMPTS, labels) is None
    recorder.record([_failed("org-a")])
    recorder.record([_failed("org-a")])
    # the series removed from the metric is not the one counted: a new one, from 0
    assert registry.get_sample_value(ATTEMPTS, labels) == 2
    failures = {
        "organization_id": "org-a",
        "decline_code": "insufficient_funds",
        "failure_class": "insufficient_funds",
    }
    assert registry.get_sample_value(FAILED, failures) == 2


def test_a_combination_folded_by_the_series_budget_counts_its_overflow_every_time() -> None:
    now = [0.0]
    config = ExporterConfig(
        ingest_token=TOKEN, bounds=LabelBounds(organization_id=50), max_series_per_metric=10
    )
    recorder, registry = _recorder(config, now)
    for i in range(10):  # the budget of the attempts' series, spent
        recorder.record([_failed(f"org-{i}")])
    overflow = {"metric": ATTEMPTS.removesuffix("_total")}
    before = registry.get_sample_value("passiton_exporter_series_budget_overflow_total", overflow)
    for _ in range(3):
        recorder.record([_failed("org-late")])
    after = registry.get_sample_value("passiton_exporter_series_budget_overflow_total", overflow)
    assert after - (before or 0) == 3
    other = {"organization_id": "other", "outcome": "failed"}
    assert registry.get_sample_value(ATTEMPTS, other) == 3


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (f"Bearer {TOKEN}", 202),
        (f"bearer {TOKEN}", 202),
        (f"Bearer  {TOKEN} ", 202),
        (f"Bearer {TOKEN}x", 401),
        (f"Bearer {TOKEN[:-1]}", 401),
        (f"Basic {TOKEN}", 401),
        (TOKEN, 401),
        ("Bearer tökén", 401),
        ("", 401),
    ],
)
async def test_the_token_is_accepted_and_refused_as_before(
    aiohttp_client, authorization: str, status: int
) -> None:
    client = await aiohttp_client(make_app(ingest_token=TOKEN))
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post(
        "/v1/events", json={"type": "database.error", "operation": "select"}, headers=headers
    )
    assert response.status == status


async def test_a_compressed_body_over_the_limit_once_decompressed_is_refused(
    aiohttp_client,
) -> None:
    app = make_app(ingest_token=TOKEN, max_body_bytes=4096)
    client = await aiohttp_client(app)
    event = {"type": "database.error", "operation": "select"}
    body = gzip.compress(json.dumps([event] * 400).encode())  # about 17 KB of JSON
    assert len(body) < 4096
    response = await client.post(
        "/v1/events",
        data=body,
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status == 413
    assert (await response.json())["error"] == "too_large"
    assert sample(app, "passiton_database_errors_total", operation="select") == 0
