"""A delivery held back (quiet hours, a rate limit) keeps its retries: the maximum age counts
from its first real attempt, not from when it was stored. Real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.app import BRIDGE, create_app
from bridge.channels.base import DeliveryError
from bridge.retry import RetryPolicy
from tests.bridge.support import AUTH, Clock, am_alert, body, make_config, notifiers, payload

ONE_HOUR = RetryPolicy(initial=60.0, max_delay=600.0, max_age_seconds=3600.0, jitter="none")


async def start(db_url, aiohttp_client, clock, chans, **overrides):
    config = make_config(db_url, retry=ONE_HOUR, **overrides)
    app = create_app(config, notifiers=chans, clock=clock, workers=False)
    client = await aiohttp_client(app)
    return client, app[BRIDGE]


async def post(client, *alerts, group_key: str = "g") -> None:
    data = body(payload(*alerts, group_key=group_key))
    response = await client.post("/v1/alertmanager", data=data, headers=AUTH)
    assert response.status == 200, await response.text()


async def rows(storage) -> list[tuple[str, int]]:
    found = await storage.query("SELECT state, attempts FROM alert_deliveries ORDER BY id")
    return [(r["state"], r["attempts"]) for r in found]


async def test_quiet_hours_do_not_use_up_the_maximum_age(db_url, aiohttp_client):
    clock = Clock(datetime(2026, 3, 1, 22, 0, tzinfo=UTC))  # 23:00 in Berlin
    chans = notifiers("slack")
    client, bridge = await start(db_url, aiohttp_client, clock, chans)
    await bridge.storage.execute(
        "INSERT INTO notification_preferences"
        " (organization_id, quiet_hours_start, quiet_hours_end, timezone)"
        " VALUES ('org-1', '22:00', '07:00', 'Europe/Berlin')"
    )
    await bridge.router.refresh(bridge.storage)
    await post(client, am_alert(fingerprint="night", severity="medium"))
    # Held for 8 hours (longer than the 1-hour maximum age): not backlog while it waits.
    await bridge.maintenance_once()
    metrics = await (await client.get("/metrics")).text()
    assert "passiton_bridge_queue_oldest_pending_seconds 0.0" in metrics
    clock.now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    chans["slack"].outcomes = [DeliveryError("slack answered 503", retryable=True)] * 3
    assert await bridge.delivery.run_once() == 1
    assert await rows(bridge.storage) == [("pending", 1)]  # retried, not dead-lettered
    for _ in range(3):
        clock.advance(600)
        await bridge.delivery.run_once()
    assert await rows(bridge.storage) == [("sent", 4)]
    assert [m.alerts[0].fingerprint for m in chans["slack"].messages] == ["night"]


async def test_quiet_hours_then_failures_past_the_age_of_the_first_attempt(db_url, aiohttp_client):
    clock = Clock(datetime(2026, 3, 1, 22, 0, tzinfo=UTC))
    chans = notifiers("slack")
    client, bridge = await start(db_url, aiohttp_client, clock, chans)
    await bridge.storage.execute(
        "INSERT INTO notification_preferences"
        " (organization_id, quiet_hours_start, quiet_hours_end, timezone)"
        " VALUES ('org-1', '22:00', '07:00', 'Europe/Berlin')"
    )
    await bridge.router.refresh(bridge.storage)
    await post(client, am_alert(fingerprint="night", severity="medium"))
    clock.now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    chans["slack"].outcomes = [DeliveryError("slack answered 503", retryable=True)] * 50
    for _ in range(20):
        await bridge.delivery.run_once()
        clock.advance(600)
    [(state, attempts)] = await rows(bridge.storage)
    assert state == "dead"
    assert 5 <= attempts <= 8  # one hour of 10-minute steps from the first attempt at 06:00


async def test_a_rate_limited_delivery_keeps_its_retries(db_url, aiohttp_client):
    clock = Clock()
    chans = notifiers("sms")
    client, bridge = await start(
        db_url, aiohttp_client, clock, chans, rate_limits={"sms": (1, 7200.0)}
    )
    # Two unrelated alerts (two incidents): two pages, the second one over the rate limit.
    await post(client, am_alert("First", fingerprint="a", severity="critical"), group_key="g1")
    await post(client, am_alert("Second", fingerprint="b", severity="critical"), group_key="g2")
    await bridge.delivery.run_once()
    assert await rows(bridge.storage) == [("sent", 1), ("pending", 0)]  # deferral: no attempt
    clock.advance(7200)  # two hours later, past the maximum age counted from creation
    chans["sms"].outcomes = [DeliveryError("twilio answered 503", retryable=True)]
    await bridge.delivery.run_once()
    assert await rows(bridge.storage) == [("sent", 1), ("pending", 1)]  # retried, not dead
    clock.advance(60)  # the failed send counted against the budget: deferred again, no attempt
    await bridge.delivery.run_once()
    assert await rows(bridge.storage) == [("sent", 1), ("pending", 1)]
    clock.advance(7200)
    await bridge.delivery.run_once()
    assert await rows(bridge.storage) == [("sent", 1), ("sent", 2)]
    assert [m.alerts[0].fingerprint for m in chans["sms"].messages] == ["a", "b"]
