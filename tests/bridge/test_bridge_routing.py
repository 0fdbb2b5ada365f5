"""Routing, per-organization preferences, alert fatigue and the dead man's switch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bridge.app import BRIDGE, Bridge, create_app
from bridge.routing import quiet_until
from bridge.webhook import parse_notification
from tests.bridge.support import (
    AUTH,
    T0,
    BridgeClient,
    Clock,
    alert_rows,
    am_alert,
    body,
    count,
    make_config,
    notifiers,
    payload,
)


async def start(db_url, aiohttp_client, channels=("slack", "email", "pagerduty", "sms"), **kw):
    clock = kw.pop("clock", None) or Clock()
    chans = notifiers(*channels)
    app = create_app(make_config(db_url, **kw), notifiers=chans, clock=clock, workers=False)
    return BridgeClient(await aiohttp_client(app), app[BRIDGE], chans, clock)


async def post(client, *alerts, **kw):
    response = await client.post(
        "/v1/alertmanager", data=body(payload(*alerts, **kw)), headers=AUTH
    )
    assert response.status == 200, await response.text()
    await client.bridge.delivery.run_once()
    return await response.json()


def sent(client, channel):
    """(status, notice, fingerprints) of every message a channel received, then forget them."""
    messages = client.chans[channel].messages
    result = [(m.status, m.notice, [a.fingerprint for a in m.alerts]) for m in messages]
    messages.clear()
    return result


async def reload(client):
    await client.bridge.router.refresh(client.bridge.storage)


async def test_default_severity_table(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client)
    await post(
        client,
        am_alert(fingerprint="crit", severity="critical"),
        am_alert(fingerprint="high", severity="high"),
        am_alert(fingerprint="med", severity="medium"),
        am_alert(fingerprint="low", severity="low"),
    )
    assert sent(client, "slack") == [("firing", "", ["crit", "high", "med"])]
    assert sent(client, "email") == [("firing", "", ["crit", "high", "low"])]
    assert sent(client, "pagerduty") == [("firing", "", ["crit"])]
    assert sent(client, "sms") == [("firing", "", ["crit"])]


async def test_console_when_nothing_else_is_configured(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client, channels=("console",))
    await post(client, am_alert(severity="low"), am_alert(fingerprint="x2", severity="critical"))
    assert len(sent(client, "console")) == 1


async def test_unconfigured_channels_are_skipped(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client, channels=("slack",))
    result = await post(client, am_alert(severity="low"))
    assert result["deliveries"] == 0
    assert len(await alert_rows(client.bridge.storage)) == 1
    text = await (await client.get("/metrics")).text()
    assert 'passiton_bridge_suppressed_total{reason="no_channel"} 1.0' in text


async def test_organization_preferences_override_channels_and_recipients(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client)
    await client.bridge.storage.execute(
        "INSERT INTO notification_preferences (organization_id, channels, recipients)"
        """ VALUES ('org-2', '["sms", "email"]', '{"sms": ["+15550001111"]}'),"""
        """ ('org-3', '{"high": ["pagerduty"]}', '{}')"""
    )
    await reload(client)
    await post(
        client,
        am_alert(fingerprint="o1", organization_id="org-1"),
        am_alert(fingerprint="o2", organization_id="org-2"),
        am_alert(fingerprint="o3", organization_id="org-3"),
        am_alert(fingerprint="o3m", organization_id="org-3", severity="medium"),
    )
    assert sent(client, "slack") == [("firing", "", ["o1", "o3m"])]
    assert sent(client, "email") == [("firing", "", ["o1", "o2"])]
    sms = client.chans["sms"].messages
    assert [(m.recipients, [a.fingerprint for a in m.alerts]) for m in sms] == [
        (("+15550001111",), ["o2"])
    ]
    assert sent(client, "pagerduty") == [("firing", "", ["o3"])]


async def test_min_severity_and_disabled_alerts_are_stored_but_quiet(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client)
    await client.bridge.storage.execute(
        "INSERT INTO notification_preferences (organization_id, min_severity)"
        " VALUES ('org-1', 'high');"
        "INSERT INTO alert_configurations (organization_id, alertname, threshold, enabled)"
        " VALUES ('org-1', 'WidgetErrors', 0.2, false), ('org-1', 'PaymentFailureRateHigh', 0.05,"
        " true)"
    )
    await reload(client)
    await post(
        client,
        am_alert("WidgetErrors", fingerprint="dis", severity="critical"),
        am_alert(fingerprint="minsev", severity="medium"),
        am_alert(fingerprint="ok", severity="high"),
    )
    assert len(await alert_rows(client.bridge.storage)) == 3
    assert sent(client, "slack") == [("firing", "", ["ok"])]
    assert sent(client, "pagerduty") == []
    text = await (await client.get("/metrics")).text()
    assert 'passiton_bridge_suppressed_total{reason="disabled"} 1.0' in text
    assert 'passiton_bridge_suppressed_total{reason="min_severity"} 1.0' in text
    assert (
        'passiton_alert_threshold{alertname="PaymentFailureRateHigh",organization_id="org-1"} 0.05'
        in text
    )
    assert "WidgetErrors" not in text.split("passiton_alert_threshold", 1)[1]


async def test_routing_cache_reloads_only_when_the_tables_change(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client)
    router, storage = client.bridge.router, client.bridge.storage
    assert not await router.refresh(storage)  # nothing changed since start-up
    await storage.execute(
        "INSERT INTO alert_configurations (organization_id, alertname, enabled)"
        " VALUES ('org-1', 'PaymentFailureRateHigh', false)"
    )
    await post(client, am_alert(fingerprint="before"))  # cache not refreshed yet
    assert sent(client, "slack") == [("firing", "", ["before"])]
    # Resolved, so that the next ones open an incident of their own (not join its, silently).
    await post(client, am_alert(fingerprint="before", status="resolved"))
    assert sent(client, "slack") == [("resolved", "", ["before"])]
    await client.bridge.maintenance_once()  # the periodic refresh sees the new version
    await post(client, am_alert(fingerprint="after"))
    assert sent(client, "slack") == []
    await storage.execute("DELETE FROM alert_configurations")
    assert await router.refresh(storage)
    await post(client, am_alert(fingerprint="again"))
    assert sent(client, "slack") == [("firing", "", ["again"])]


def test_quiet_until():
    berlin_23h = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # 23:00 in Berlin (UTC+1)
    start, end = datetime(2026, 1, 1, 22).time(), datetime(2026, 1, 1, 7).time()
    assert quiet_until(start, end, "Europe/Berlin", berlin_23h) == datetime(
        2026, 3, 2, 6, 0, tzinfo=UTC
    )
    assert quiet_until(start, end, "Europe/Berlin", berlin_23h - timedelta(hours=2)) is None
    assert quiet_until(start, end, "UTC", berlin_23h + timedelta(hours=3)) == datetime(
        2026, 3, 2, 7, 0, tzinfo=UTC
    )
    assert quiet_until(start, start, "UTC", berlin_23h) is None


async def test_quiet_hours_hold_back_non_critical_until_they_end(db_url, aiohttp_client):
    clock = Clock(datetime(2026, 3, 1, 22, 0, tzinfo=UTC))  # 23:00 in Berlin
    client = await start(db_url, aiohttp_client, clock=clock)
    await client.bridge.storage.execute(
        "INSERT INTO notification_preferences"
        " (organization_id, quiet_hours_start, quiet_hours_end, timezone)"
        " VALUES ('org-1', '22:00', '07:00', 'Europe/Berlin')"
    )
    await reload(client)
    await post(
        client,
        am_alert(fingerprint="night-high", severity="high"),
        am_alert(fingerprint="night-crit", severity="critical"),
    )
    # Critical goes out at once, on every channel; high waits for 07:00 Berlin.
    assert sent(client, "pagerduty") == [("firing", "", ["night-crit"])]
    assert sent(client, "slack") == [("firing", "", ["night-crit"])]
    clock.now = datetime(2026, 3, 2, 5, 59, tzinfo=UTC)
    await client.bridge.delivery.run_once()
    assert sent(client, "slack") == []
    clock.now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    await client.bridge.delivery.run_once()
    assert sent(client, "slack") == [("firing", "", ["night-high"])]
    assert sent(client, "email") == [
        ("firing", "", ["night-crit"]),
        ("firing", "", ["night-high"]),
    ]


async def test_cooldown_unless_severity_rose(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client, channels=("slack",), cooldown_seconds=600)
    clock = client.clock

    def alert(fp, status="firing", severity="medium", starts=0):
        return am_alert(
            "Latency",
            fingerprint=fp,
            status=status,
            severity=severity,
            starts_at=T0 + timedelta(seconds=starts),
        )

    await post(client, alert("m"))
    clock.advance(60)
    await post(client, alert("m", "resolved"))
    assert sent(client, "slack") == [("firing", "", ["m"]), ("resolved", "", ["m"])]
    clock.advance(60)
    await post(client, alert("m", starts=120))  # fires again within the cooldown
    clock.advance(60)
    await post(client, alert("m", "resolved", starts=120))  # its resolve is noise too
    assert sent(client, "slack") == []
    clock.advance(60)
    await post(client, alert("h", severity="high", starts=240))  # escalated: pages again
    assert sent(client, "slack") == [("firing", "", ["h"])]
    # Resolved, so that "m" opens an incident of its own rather than joining h's silently.
    await post(client, alert("h", "resolved", severity="high", starts=240))
    assert sent(client, "slack") == [("resolved", "", ["h"])]
    clock.advance(601)
    await post(client, alert("m", starts=900))  # cooldown over
    assert sent(client, "slack") == [("firing", "", ["m"])]
    text = await (await client.get("/metrics")).text()
    assert 'passiton_bridge_suppressed_total{reason="cooldown"} 2.0' in text


async def test_flapping_gets_one_notice_then_quiet_until_settled(db_url, aiohttp_client):
    client = await start(
        db_url,
        aiohttp_client,
        channels=("slack",),
        flap_cycles=3,
        flap_window_seconds=3600,
        flap_settle_seconds=600,
    )
    clock = client.clock
    for cycle in range(5):
        starts = cycle * 120
        await post(
            client, am_alert("Flappy", fingerprint="fl", starts_at=T0 + timedelta(seconds=starts))
        )
        clock.advance(60)
        await post(
            client,
            am_alert(
                "Flappy",
                fingerprint="fl",
                status="resolved",
                starts_at=T0 + timedelta(seconds=starts),
            ),
        )
        clock.advance(60)
    await post(client, am_alert("Flappy", fingerprint="fl", starts_at=T0 + timedelta(seconds=900)))
    messages = sent(client, "slack")
    # Two full cycles notified, the third resolve turns into the one flapping notice.
    assert messages == [
        ("firing", "", ["fl"]),
        ("resolved", "", ["fl"]),
        ("firing", "", ["fl"]),
        ("resolved", "", ["fl"]),
        ("firing", "", ["fl"]),
        ("resolved", "flapping", ["fl"]),
    ]
    await client.bridge.maintenance_once()
    assert sent(client, "slack") == []  # not settled yet
    clock.advance(601)
    await client.bridge.maintenance_once()
    await client.bridge.delivery.run_once()
    assert sent(client, "slack") == [("firing", "settled", ["fl"])]  # still firing at the end
    await client.bridge.maintenance_once()
    await client.bridge.delivery.run_once()
    assert sent(client, "slack") == []


@pytest.mark.parametrize("replicas", [1, 2])
async def test_dead_mans_switch_pages_once_and_resolves(db_url, replicas):
    clock = Clock()
    config = make_config(db_url, deadman_after_seconds=300)
    bridges = [
        Bridge(config, notifiers("slack", "email", "pagerduty", "sms"), clock=clock)
        for _ in range(replicas)
    ]
    for bridge in bridges:
        await bridge.start(workers=False)
    try:

        def watchdog():
            alert = am_alert("Watchdog", fingerprint="wd", severity="none", category="system")
            return parse_notification(body(payload(alert)))

        await bridges[0].ingest(watchdog())
        clock.advance(200)
        await asyncio.gather(*(b.maintenance_once() for b in bridges))
        assert await count(bridges[0].storage, "alert_deliveries") == 0
        clock.advance(101)
        for _ in range(2):
            await asyncio.gather(*(b.maintenance_once() for b in bridges))
        rows = await bridges[0].storage.query(
            "SELECT channel FROM alert_deliveries ORDER BY channel"
        )
        assert [r["channel"] for r in rows] == ["email", "pagerduty", "slack", "sms"]
        await asyncio.gather(*(b.delivery.run_once() for b in bridges))
        pages = [m for b in bridges for m in b.notifiers["pagerduty"].messages]
        assert [(m.status, m.severity, m.alerts[0].alertname) for m in pages] == [
            ("firing", "critical", "AlertingPipelineDown")
        ]
        # The Watchdog comes back (on any replica): one resolve, same alert identity.
        await asyncio.gather(*(b.ingest(watchdog()) for b in bridges))
        await bridges[0].ingest(watchdog())
        await asyncio.gather(*(b.delivery.run_once() for b in bridges))
        pages = sorted(
            (m for b in bridges for m in b.notifiers["pagerduty"].messages),
            key=lambda m: m.status,  # replicas may each have sent one of them
        )
        assert [m.status for m in pages] == ["firing", "resolved"]
        assert pages[0].alerts[0].starts_at == pages[1].alerts[0].starts_at
        # The Watchdog itself is neither stored nor sent to anyone.
        assert await alert_rows(bridges[0].storage) == []
        assert all(m.alerts[0].alertname != "Watchdog" for m in pages)
        text = bridges[0].metrics.registry.get_sample_value(
            "passiton_bridge_watchdog_last_seen_timestamp_seconds"
        )
        assert text == clock().timestamp()
    finally:
        for bridge in bridges:
            await bridge.stop()


async def test_dead_mans_switch_waits_a_full_period_after_a_bridge_restart(db_url):
    clock = Clock()
    config = make_config(db_url, deadman_after_seconds=300)

    first = Bridge(config, notifiers("pagerduty"), clock=clock)
    await first.start(workers=False)
    alert = am_alert("Watchdog", fingerprint="wd", severity="none", category="system")
    await first.ingest(parse_notification(body(payload(alert))))
    await first.maintenance_once()
    await first.stop()
    clock.advance(3600)  # the bridge was down for an hour: it heard no Watchdog either
    restarted = Bridge(config, notifiers("pagerduty"), clock=clock)
    await restarted.start(workers=False)
    try:
        await restarted.maintenance_once()
        clock.advance(299)
        await restarted.maintenance_once()
        assert await count(restarted.storage, "alert_deliveries") == 0
        clock.advance(2)
        await restarted.maintenance_once()
        assert await count(restarted.storage, "alert_deliveries") == 1
    finally:
        await restarted.stop()


async def test_alert_held_by_the_cooldown_is_notified_at_the_next_repeat(db_url, aiohttp_client):
    """Alertmanager repeats a firing alert (same identity) every repeat_interval; a re-fire held
    back by the cooldown must not stay silent for as long as it keeps firing."""
    client = await start(db_url, aiohttp_client, channels=("slack",), cooldown_seconds=600)
    clock = client.clock

    def alert(status="firing", starts=0):
        return am_alert(
            "Latency",
            fingerprint="held",
            status=status,
            severity="medium",
            starts_at=T0 + timedelta(seconds=starts),
        )

    await post(client, alert())
    clock.advance(60)
    await post(client, alert("resolved"))
    clock.advance(60)
    await post(client, alert(starts=120))  # re-fires within the cooldown: held
    assert sent(client, "slack") == [("firing", "", ["held"]), ("resolved", "", ["held"])]
    clock.advance(300)
    await post(client, alert(starts=120))  # Alertmanager repeats it, still within the cooldown
    assert sent(client, "slack") == []
    clock.advance(181)  # the cooldown (600 s after the first send) is over
    await post(client, alert(starts=120))
    assert sent(client, "slack") == [("firing", "", ["held"])]
    clock.advance(60)
    await post(client, alert(starts=120))  # later repeats: already told
    assert sent(client, "slack") == []
    await post(client, alert("resolved", starts=120))
    assert sent(client, "slack") == [("resolved", "", ["held"])]
    rows = await client.bridge.storage.query(
        "SELECT status, held_until FROM payment_alerts"
        " WHERE fingerprint = 'held' ORDER BY starts_at"
    )
    assert [(r["status"], r["held_until"]) for r in rows] == [
        ("resolved", None),
        ("resolved", None),
    ]
