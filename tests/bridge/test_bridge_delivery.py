"""The outbox and its workers on real PostgreSQL: retries, dead letters, restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bridge.app import BRIDGE, Bridge, create_app
from bridge.channels.base import DeliveryError
from bridge.codec import decode_message
from bridge.config import ConfigError, parse_rate_limits
from bridge.webhook import parse_notification
from tests.bridge.support import (
    AUTH,
    Clock,
    am_alert,
    body,
    count,
    make_config,
    notifiers,
    payload,
    wait_until,
)


async def post(client, *alerts, **kw):
    response = await client.post(
        "/v1/alertmanager", data=body(payload(*alerts, **kw)), headers=AUTH
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def states(storage) -> list[tuple[str, int, str | None]]:
    rows = await storage.query(
        "SELECT state, attempts, last_error FROM alert_deliveries ORDER BY id"
    )
    return [(r["state"], r["attempts"], r["last_error"]) for r in rows]


async def test_transient_failure_then_success(db_url, aiohttp_client):
    clock = Clock()
    chans = notifiers("slack")
    chans["slack"].outcomes = [
        DeliveryError("slack answered 503", retryable=True),
        DeliveryError("slack answered 429", retryable=True, retry_after=30),
    ]
    app = create_app(make_config(db_url), notifiers=chans, clock=clock, workers=False)
    client = await aiohttp_client(app)
    bridge = app[BRIDGE]
    await post(client, am_alert(severity="medium"))

    assert await bridge.delivery.run_once() == 1
    assert await states(bridge.storage) == [("pending", 1, "slack answered 503")]
    assert await bridge.delivery.run_once() == 0  # not due yet: backoff 1 s
    clock.advance(1)
    assert await bridge.delivery.run_once() == 1
    assert await states(bridge.storage) == [("pending", 2, "slack answered 429")]
    clock.advance(29)  # Retry-After 30 s is honoured over the 2 s backoff
    assert await bridge.delivery.run_once() == 0
    clock.advance(1)
    assert await bridge.delivery.run_once() == 1
    assert (await states(bridge.storage))[0][:2] == ("sent", 3)
    assert len(chans["slack"].messages) == 1
    text = await (await client.get("/metrics")).text()
    assert 'passiton_bridge_deliveries_total{channel="slack",outcome="retry"} 2.0' in text
    assert 'passiton_bridge_deliveries_total{channel="slack",outcome="success"} 1.0' in text
    assert 'passiton_bridge_rate_limited_total{channel="slack"} 1.0' in text


async def test_permanent_failure_is_dead_lettered(db_url, aiohttp_client):
    chans = notifiers("slack")
    chans["slack"].outcomes = [DeliveryError("slack: invalid_payload", retryable=False)]
    app = create_app(make_config(db_url), notifiers=chans, workers=False)
    client = await aiohttp_client(app)
    bridge = app[BRIDGE]
    await post(client, am_alert(severity="medium"))
    await bridge.delivery.run_once()
    assert await states(bridge.storage) == [("dead", 1, "slack: invalid_payload")]
    assert chans["slack"].messages == []
    await bridge.maintenance_once()
    text = await (await client.get("/metrics")).text()
    assert 'passiton_bridge_dead_letters_total{channel="slack"} 1.0' in text
    assert 'passiton_bridge_deliveries_total{channel="slack",outcome="dead"} 1.0' in text
    assert "passiton_bridge_queue_depth 0.0" in text


async def test_transient_failures_past_max_age_are_dead_lettered(db_url, aiohttp_client):
    clock = Clock()
    chans = notifiers("email")
    chans["email"].outcomes = [DeliveryError("smtp 451", retryable=True)] * 50
    app = create_app(make_config(db_url), notifiers=chans, clock=clock, workers=False)
    client = await aiohttp_client(app)
    bridge = app[BRIDGE]
    await post(client, am_alert(severity="low"))
    for _ in range(20):
        await bridge.delivery.run_once()
        clock.advance(600)
    rows = await states(bridge.storage)
    assert rows[0][0] == "dead"
    assert rows[0][2] == "smtp 451"
    assert 5 <= rows[0][1] <= 8  # max age 1 h with 10-minute steps


async def test_timeouts_and_unexpected_errors_are_retried(db_url, aiohttp_client):
    chans = notifiers("slack")
    chans["slack"].gate = asyncio.Event()  # never opened: the send hangs
    app = create_app(
        make_config(db_url, delivery_timeout_seconds=0.2), notifiers=chans, workers=False
    )
    client = await aiohttp_client(app)
    bridge = app[BRIDGE]
    await post(client, am_alert(severity="medium"))
    await bridge.delivery.run_once()
    assert (await states(bridge.storage))[0][0] == "pending"
    assert "no answer within" in (await states(bridge.storage))[0][2]


async def test_partial_delivery_retries_only_remaining_recipients(db_url, aiohttp_client):
    clock = Clock()
    chans = notifiers("sms")
    chans["sms"].outcomes = [
        DeliveryError("1/2 delivered", retryable=True, remaining=("+15550000002",))
    ]
    app = create_app(
        make_config(db_url, deadman_after_seconds=0), notifiers=chans, clock=clock, workers=False
    )
    client = await aiohttp_client(app)
    bridge = app[BRIDGE]
    await post(client, am_alert(severity="critical"))
    await bridge.delivery.run_once()
    clock.advance(5)
    await bridge.delivery.run_once()
    assert chans["sms"].messages[0].recipients == ("+15550000002",)


async def test_stopped_bridge_delivers_pending_once_after_restart(db_url):
    config = make_config(db_url)
    first = notifiers("slack", "email")
    bridge = Bridge(config, first)
    await bridge.start(workers=False)

    await bridge.ingest(parse_notification(body(payload(am_alert(severity="high")))))
    await bridge.stop()  # stopped before any delivery ran
    assert first["slack"].calls == first["email"].calls == 0

    second = notifiers("slack", "email")
    restarted = Bridge(config, second)
    await restarted.start(workers=True)
    try:
        await wait_until(lambda: second["slack"].messages and second["email"].messages)

        async def all_sent() -> bool:
            return await count(restarted.storage, "alert_deliveries", "WHERE state = 'sent'") == 2

        await wait_until(all_sent)
    finally:
        await restarted.stop()
    assert len(second["slack"].messages) == len(second["email"].messages) == 1


async def test_claim_of_a_killed_bridge_expires_and_is_delivered_once(db_url):
    clock = Clock()
    config = make_config(db_url, delivery_lease_seconds=120)

    crashed = Bridge(config, notifiers("slack"), clock=clock)
    await crashed.start(workers=False)
    await crashed.ingest(parse_notification(body(payload(am_alert(severity="medium")))))
    # The bridge claims the delivery and dies before recording any outcome.
    claimed = await crashed.storage.claim_deliveries(
        "slack", 10, clock(), clock() + timedelta(seconds=120)
    )
    assert len(claimed) == 1
    await crashed.stop()

    chans = notifiers("slack")
    survivor = Bridge(config, chans, clock=clock)
    await survivor.start(workers=False)
    try:
        assert await survivor.delivery.run_once() == 0  # still leased
        clock.advance(121)
        assert await survivor.delivery.run_once() == 1
        assert await survivor.delivery.run_once() == 0
    finally:
        await survivor.stop()
    assert len(chans["slack"].messages) == 1


async def test_replicas_share_the_queue_without_double_delivery(db_url):
    config = make_config(db_url, delivery_concurrency=3)

    replicas = [Bridge(config, notifiers("slack")) for _ in range(3)]
    for bridge in replicas:
        await bridge.start(workers=False)
    try:
        for i in range(30):
            alert = am_alert(f"Alert{i}", fingerprint=f"q{i}", severity="medium")  # unrelated
            await replicas[0].ingest(parse_notification(body(payload(alert, group_key=f"g{i}"))))
        await asyncio.gather(*(b.delivery.run_once() for b in replicas))
    finally:
        for bridge in replicas:
            await bridge.stop()
    keys = [m.group_key for b in replicas for m in b.notifiers["slack"].messages]
    assert sorted(keys) == sorted(f"g{i}" for i in range(30))


async def test_workers_deliver_in_the_background(db_url, aiohttp_client):
    chans = notifiers("slack", "email", "pagerduty", "sms")
    app = create_app(make_config(db_url), notifiers=chans)
    client = await aiohttp_client(app)
    await post(
        client,
        am_alert(fingerprint="b1", severity="critical"),
        am_alert(fingerprint="b2", severity="critical"),
    )
    await wait_until(lambda: all(c.messages for c in chans.values()))
    # One incident (the same alert twice): one PagerDuty message listing both, as on Slack
    # (before incidents: one PagerDuty message per alert).
    [page] = chans["pagerduty"].messages
    assert [a.fingerprint for a in page.alerts] == ["b1", "b2"]
    slack = chans["slack"].messages
    assert len(slack) == 1
    assert [a.fingerprint for a in slack[0].alerts] == ["b1", "b2"]
    assert slack[0].external_url == "http://alertmanager.test:9093"
    stored = await app[BRIDGE].storage.query("SELECT message FROM alert_deliveries LIMIT 1")
    assert decode_message(stored[0]["message"]).alerts


async def test_rate_limit_per_destination_defers_without_failing(db_url, aiohttp_client):
    clock = Clock()
    chans = notifiers("sms")
    config = make_config(db_url, rate_limits={"sms": (2, 60.0)})
    app = create_app(config, notifiers=chans, clock=clock, workers=False)
    client = await aiohttp_client(app)
    bridge = app[BRIDGE]
    for i in range(3):
        alert = am_alert(f"Alert{i}", fingerprint=f"rl{i}", severity="critical")  # unrelated
        await post(client, alert, group_key=f"g{i}")
    await bridge.delivery.run_once()
    assert len(chans["sms"].messages) == 2
    assert await states(bridge.storage) == [
        ("sent", 1, None),
        ("sent", 1, None),
        ("pending", 0, "rate limited"),  # a deferral is not an attempt
    ]
    clock.advance(59)
    assert await bridge.delivery.run_once() == 0
    clock.advance(1)
    await bridge.delivery.run_once()
    assert len(chans["sms"].messages) == 3
    text = await (await client.get("/metrics")).text()
    assert 'passiton_bridge_rate_limited_total{channel="sms"} 1.0' in text
    assert 'passiton_bridge_deliveries_total{channel="sms",outcome="dead"}' not in text


def test_rate_limits_from_the_environment():
    assert parse_rate_limits("") == {}
    assert parse_rate_limits("sms=10/h, email=30/m") == {"sms": (10, 3600.0), "email": (30, 60.0)}


@pytest.mark.parametrize("bad", ["sms", "sms=10", "sms=ten/h", "sms=10/y", "sms=0/h"])
def test_bad_rate_limits_are_refused(bad):
    with pytest.raises(ConfigError, match="BRIDGE_RATE_LIMITS"):
        parse_rate_limits(bad)
