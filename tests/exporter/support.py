"""Helpers shared by the exporter tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import RECORDER, REGISTRY, create_app
from exporter.beacon_keys import beacon_key
from exporter.config import ExporterConfig
from exporter.metrics import ExporterMetrics
from exporter.recorder import Recorder

BEACON_SECRET = "beacon-secret-for-the-tests"


def make_app(clock: Callable[[], float] = time.monotonic, **overrides: Any):
    """The internal app (``app[PUBLIC]`` is the public one); a development run unless a token
    is given, with a beacon secret unless one is given. ``clock``: what the public rate limits
    read (a test that counts what a limit lets through drives it)."""
    overrides.setdefault("development", not overrides.get("ingest_token"))
    overrides.setdefault("beacon_secret", BEACON_SECRET)
    return create_app(ExporterConfig(**overrides), clock)


def key_for(organization_id: str, widget_id: str, secret: str = BEACON_SECRET) -> str:
    return beacon_key(secret, organization_id, widget_id)


def sample(app, name: str, **labels: str) -> float:
    """Value of one sample, 0.0 when the series does not exist."""
    registry: CollectorRegistry = app[REGISTRY]
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def series(app, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample whose name starts with prefix, keyed by (name, sorted labels)."""
    out = {}
    for family in app[REGISTRY].collect():
        for s in family.samples:
            if s.name.startswith(prefix) and not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def parse_exposition(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


# Series that change with time rather than input: the ingest-latency and loop-lag histograms, the
# sliding-window source gauges (recomputed at each scrape as old slots age out).
_TIME_DEPENDENT = (
    "passiton_exporter_ingest_duration",
    "passiton_event_loop_lag_seconds",
    "passiton_widget_failure_distinct_sources",
    "passiton_traffic_window_requests",
    "passiton_traffic_top_sources_ratio",
    "passiton_traffic_distinct_sources",
)


def all_samples(app) -> dict:
    """A snapshot of every sample that only input can change, plus the source window's total."""
    snapshot = {
        k: v for k, v in series(app, "passiton_").items() if not k[0].startswith(_TIME_DEPENDENT)
    }
    snapshot[("source_window_added", ())] = app[RECORDER].sources.added
    return snapshot


async def post_events(client, body, status=202):
    """POST ``body`` to /v1/events and return the answer's JSON, after checking its status."""
    response = await client.post("/v1/events", json=body)
    payload = await response.json()
    assert response.status == status, payload
    return payload


def make_recorder(
    config: ExporterConfig, clock: Callable[[], float]
) -> tuple[Recorder, CollectorRegistry]:
    """A recorder on a registry of its own, its time-based state on ``clock``."""
    registry = CollectorRegistry()
    metrics = ExporterMetrics.create(registry, config.widget_timeout_seconds)
    return Recorder(metrics, config, clock=clock), registry
