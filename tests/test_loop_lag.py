"""The event-loop lag monitor of both services: a blocked loop shows up in the histogram."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from bridge.metrics import BridgeMetrics
from exporter.app import METRICS
from passiton_common import loop_lag
from tests.exporter.support import make_app


async def test_a_blocked_loop_is_recorded_as_lag():
    for histogram in (
        make_app()[METRICS].event_loop_lag,
        BridgeMetrics(CollectorRegistry()).event_loop_lag,
    ):
        task = asyncio.create_task(loop_lag.monitor(histogram, interval=0.01))
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # a handler blocking the loop
        await asyncio.sleep(0.05)
        task.cancel()
        buckets = {
            s.labels["le"]: s.value
            for s in histogram.collect()[0].samples
            if s.name.endswith("_bucket")
        }
        assert buckets["+Inf"] >= 3
        assert buckets["+Inf"] - buckets["0.25"] >= 1, buckets  # one tick at least 0.25 s late


async def test_both_apps_run_the_monitor(aiohttp_client):
    app = make_app()
    client = await aiohttp_client(app)
    await asyncio.sleep(0.6)
    text = await (await client.get("/metrics")).text()
    assert "passiton_event_loop_lag_seconds_count" in text
    count = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("passiton_event_loop_lag_seconds_count")
    )
    assert count >= 1
    assert "passiton_event_loop_lag_seconds" in {
        m.name for m in BridgeMetrics(CollectorRegistry()).registry.collect()
    }
