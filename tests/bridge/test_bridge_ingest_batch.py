"""Concurrent notifications coalesced into one transaction (``Ingestor``), on real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bridge.app import BRIDGE, create_app
from bridge.storage import StorageUnavailable
from bridge.webhook import parse_notification
from tests.bridge.support import AUTH, alert_rows, am_alert, body, count, make_config, notifiers
from tests.bridge.support import payload as am_payload


def notification(fingerprint: str, *, name: str = "PaymentFailureRateHigh", **kw):
    data = am_payload(am_alert(name, fingerprint=fingerprint, **kw), group_key=f"g-{fingerprint}")
    return parse_notification(body(data))


@pytest.fixture
async def client(db_url, aiohttp_client):
    chans = notifiers("slack", "email", "pagerduty", "sms")
    app = create_app(make_config(db_url), notifiers=chans, workers=False)
    client = await aiohttp_client(app)
    client.bridge = app[BRIDGE]
    client.chans = chans
    return client


def gate_commits(bridge) -> tuple[asyncio.Event, list[str]]:
    """Hold every transaction before its commit until the returned event is set; the list
    records "commit" after each commit."""
    storage = bridge.storage
    original = storage.transaction
    release = asyncio.Event()
    log: list[str] = []

    @contextlib.asynccontextmanager
    async def gated():
        async with original() as tx:
            yield tx
            await release.wait()
        log.append("commit")

    storage.transaction = gated
    return release, log


async def test_concurrent_notifications_share_a_transaction(client):
    bridge = client.bridge
    # Twenty unrelated alerts (twenty names): twenty incidents, each paged once.
    results = await asyncio.gather(
        *(
            bridge.ingest(notification(f"c{i}", name=f"Unrelated{i}", severity="medium"))
            for i in range(20)
        )
    )
    assert [r.new_events for r in results] == [1] * 20
    assert [r.deliveries for r in results] == [1] * 20  # medium: Slack only
    assert bridge.ingestor.transactions <= 2
    assert len(await alert_rows(bridge.storage)) == 20
    assert await count(bridge.storage, "alert_deliveries") == 20
    assert await count(bridge.storage, "alert_notifications") == 20
    await bridge.delivery.run_once()
    assert len(client.chans["slack"].messages) == 20


async def test_each_answer_waits_for_the_commit_holding_its_rows(client):
    bridge = client.bridge
    await bridge.prepare()
    release, log = gate_commits(bridge)
    ingests = [asyncio.create_task(bridge.ingest(notification(f"w{i}"))) for i in range(6)]
    await asyncio.sleep(0.3)
    assert not any(t.done() for t in ingests)  # nothing answered before its commit
    assert log == []
    release.set()
    results = await asyncio.gather(*ingests)
    assert log
    assert [r.new_events for r in results] == [1] * 6
    assert len(await alert_rows(bridge.storage)) == 6


async def test_the_same_alert_twice_in_a_batch_is_stored_and_notified_once(client):
    bridge = client.bridge
    same = [bridge.ingest(notification("dup", severity="critical")) for _ in range(3)]
    others = [
        bridge.ingest(notification(f"o{i}", name=f"Unrelated{i}", severity="critical"))
        for i in range(3)
    ]
    results = await asyncio.gather(*same, *others)
    assert sorted(r.new_events for r in results[:3]) == [0, 0, 1]
    assert sorted(r.deliveries for r in results[:3]) == [0, 0, 4]  # critical: every channel
    assert [r.new_events for r in results[3:]] == [1, 1, 1]
    assert len(await alert_rows(bridge.storage)) == 4
    assert await count(bridge.storage, "alert_deliveries") == 16
    await bridge.delivery.run_once()
    assert len(client.chans["slack"].messages) == 4


async def test_a_firing_and_its_resolve_arriving_together_are_written_in_order(client):
    bridge = client.bridge
    firing = notification("fr", severity="medium")
    resolved = parse_notification(
        body(
            am_payload(
                am_alert(fingerprint="fr", severity="medium", status="resolved"),
                group_key="g-fr",
            )
        )
    )
    first, second = await asyncio.gather(bridge.ingest(firing), bridge.ingest(resolved))
    assert (first.new_events, second.new_events) == (1, 1)
    rows = await alert_rows(bridge.storage)
    assert [r["status"] for r in rows] == ["resolved"]


async def test_a_bad_member_fails_alone(client):
    bridge = client.bridge
    router = bridge.ingestor.router
    original = router.suppression

    def suppression(alert):
        if alert.alertname == "Boom":
            raise ValueError("a bug that only this alert triggers")
        return original(alert)

    router.suppression = suppression
    await bridge.prepare()
    payloads = [am_payload(am_alert(fingerprint=f"b{i}"), group_key=f"g{i}") for i in range(5)]
    payloads.insert(2, am_payload(am_alert("Boom", fingerprint="boom"), group_key="gboom"))
    responses = await asyncio.gather(
        *(client.post("/v1/alertmanager", data=body(p), headers=AUTH) for p in payloads)
    )
    statuses = [r.status for r in responses]
    assert statuses == [200, 200, 500, 200, 200, 200]
    fingerprints = sorted(r["fingerprint"] for r in await alert_rows(bridge.storage))
    assert fingerprints == [f"b{i}" for i in range(5)]
    assert await count(bridge.storage, "alert_notifications") == 5


async def test_storage_unavailable_answers_every_member_503(client):
    bridge = client.bridge
    await bridge.prepare()
    storage = bridge.storage
    original = storage.transaction
    failures = 1

    @contextlib.asynccontextmanager
    async def flaky():
        nonlocal failures
        if failures:
            failures -= 1
            await asyncio.sleep(0.05)  # the others queue behind this one meanwhile
            raise StorageUnavailable("connection refused")
        async with original() as tx:
            yield tx

    storage.transaction = flaky
    payloads = [am_payload(am_alert(fingerprint=f"u{i}"), group_key=f"g{i}") for i in range(4)]
    responses = await asyncio.gather(
        *(client.post("/v1/alertmanager", data=body(p), headers=AUTH) for p in payloads)
    )
    statuses = [r.status for r in responses]
    assert 503 in statuses
    assert set(statuses) <= {200, 503}
    stored = {r["fingerprint"] for r in await alert_rows(storage)}
    assert stored == {f"u{i}" for i, s in enumerate(statuses) if s == 200}


async def test_back_to_back_bursts_never_strand_a_notification(client):
    """Each burst starts as the last one's writers finish: every notification still finds a
    writer (one leaving the writers' set only after its last look at the queue)."""
    bridge = client.bridge
    await bridge.prepare()
    for n in range(30):
        burst = [bridge.ingest(notification(f"r{n}-{i}", severity="low")) for i in range(3)]
        results = await asyncio.wait_for(asyncio.gather(*burst), timeout=10)
        assert [r.new_events for r in results] == [1, 1, 1]
        assert not bridge.ingestor._writers
    assert len(await alert_rows(bridge.storage)) == 90
