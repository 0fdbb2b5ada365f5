"""A large batch is recorded a label set at a time, the event loop given turns in between
(``Recorder.record_sliced``): the counts are those of recording it in one go, and other tasks
run while it is recorded (no timing asserted: a zero slice makes every label set yield)."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import generate_latest

from exporter.app import RECORDER, REGISTRY, create_app
from exporter.batches import group_by_labels
from exporter.config import ExporterConfig
from exporter.events import decode_events
from exporter.recorder import SLICE_EVENTS


def _batch(n: int) -> bytes:
    return json.dumps(
        [
            {
                "type": "traffic.request",
                "organization_id": f"org-{i % 7}",
                "country": "US",
                "user_agent": f"Mozilla/5.0 (X11; Linux x86_64) agent {i}",
            }
            if i % 2
            else {"type": "payment.failed", "organization_id": f"org-{i % 5}", "error": "timeout"}
            for i in range(n)
        ]
    ).encode()


def _samples(app) -> list[str]:
    text = generate_latest(app[REGISTRY]).decode()
    return sorted(
        line for line in text.splitlines() if line.startswith("passiton_") and "lag" not in line
    )


async def test_a_sliced_batch_counts_what_one_pass_counts_and_lets_others_run() -> None:
    config = ExporterConfig(ingest_token="sliced-record-token-0123456789")
    events, rejected, _ = decode_events(_batch(400), 1000)
    assert not rejected
    whole, sliced = create_app(config), create_app(config)
    whole[RECORDER].record(events)

    turns = 0
    done = asyncio.Event()

    async def other_task() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    await sliced[RECORDER].record_sliced(events, slice_seconds=0.0)
    done.set()
    await other
    assert _samples(sliced) == _samples(whole)
    assert turns >= len(group_by_labels(events)) - 1  # a turn after each label set but the last


async def test_a_small_batch_is_recorded_in_one_pass() -> None:
    config = ExporterConfig(ingest_token="sliced-record-token-0123456789")
    events, _, _ = decode_events(_batch(SLICE_EVENTS), 1000)
    app = create_app(config)
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        turns += 1

    other = asyncio.create_task(other_task())
    await app[RECORDER].record_sliced(events, slice_seconds=0.0)
    assert turns == 0  # it had no turn: nothing yielded
    await other
