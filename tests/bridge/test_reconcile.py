"""The reconciler against small fake Alertmanagers: two merged (an HA pair), one or both down,
missed alerts stored once. The real Alertmanager's silences and inhibitions are in
tests/console/test_console_reconcile.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from bridge.app import BRIDGE, create_app
from bridge.config import BridgeConfig
from bridge.reconcile import Reconciler
from tests.bridge.support import (
    AUTH,
    T0,
    BridgeClient,
    Clock,
    am_alert,
    body,
    make_config,
    notifiers,
    payload,
    wait_until,
)

DOWN = "http://127.0.0.1:9"  # nothing listens


def api_alert(
    name: str,
    fingerprint: str,
    *,
    state: str = "active",
    silenced_by: tuple[str, ...] = (),
    inhibited_by: tuple[str, ...] = (),
    starts_at=T0,
) -> dict[str, Any]:
    """An alert as ``GET /api/v2/alerts`` shows it (the API keeps milliseconds)."""
    alert = am_alert(name, fingerprint=fingerprint, starts_at=starts_at)
    alert["startsAt"] = starts_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    alert["endsAt"] = (starts_at + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    alert["status"] = {
        "state": state,
        "silencedBy": list(silenced_by),
        "inhibitedBy": list(inhibited_by),
    }
    alert["receivers"] = [{"name": "bridge"}]
    alert["updatedAt"] = alert["startsAt"]
    return alert


class FakeAlertmanager:
    """``/api/v2/alerts``, ``/api/v2/silences`` and ``/api/v2/status`` from lists a test sets."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.silences: list[dict[str, Any]] = []
        self.status = 200
        self.reads = 0
        self.uptime = "2026-01-01T00:00:00.000Z"  # started long ago

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v2/alerts", self._alerts)
        app.router.add_get("/api/v2/silences", self._silences)
        app.router.add_get("/api/v2/status", self._status)
        return app

    async def _alerts(self, _: web.Request) -> web.Response:
        self.reads += 1
        if self.status != 200:
            return web.Response(status=self.status, text="boom")
        return web.json_response(self.alerts)

    async def _silences(self, _: web.Request) -> web.Response:
        return web.json_response(self.silences)

    async def _status(self, _: web.Request) -> web.Response:
        return web.json_response({"uptime": self.uptime})


@pytest.fixture
async def fakes(aiohttp_server):
    pair = []
    for _ in range(2):
        fake = FakeAlertmanager()
        server = await aiohttp_server(fake.app())
        pair.append((fake, str(server.make_url("")).rstrip("/")))
    return pair


@pytest.fixture
async def bridge(db_url, aiohttp_client):
    chans = notifiers("slack")
    clock = Clock(T0 + timedelta(minutes=10))
    app = create_app(make_config(db_url), notifiers=chans, clock=clock, workers=False)
    return BridgeClient(await aiohttp_client(app), app[BRIDGE], chans, clock)


def reconciler(bridge: BridgeClient, *urls: str, grace: float = 0) -> Reconciler:
    b = bridge.bridge
    return Reconciler(
        b.storage,
        b.ingest,
        b.metrics,
        bridge.clock,
        urls,
        interval_seconds=0,
        missed_after_seconds=60,
        vanish_after_uptime_seconds=120,
        vanish_grace_seconds=grace,
    )


async def webhook(bridge: BridgeClient, *alerts: dict[str, Any]) -> None:
    response = await bridge.post("/v1/alertmanager", data=body(payload(*alerts)), headers=AUTH)
    assert response.status == 200, await response.text()


async def rows(bridge: BridgeClient) -> dict[str, dict[str, Any]]:
    found = await bridge.bridge.storage.query(
        "SELECT a.fingerprint, a.status, a.ends_at, s.silenced_by::text AS silenced,"
        " s.inhibited_by::text AS inhibited, s.resolved_reason, s.resolved_at"
        " FROM payment_alerts a LEFT JOIN alert_suppression s"
        " ON s.fingerprint = a.fingerprint AND s.starts_at = a.starts_at"
    )
    return {r["fingerprint"]: r for r in found}


async def state(bridge: BridgeClient) -> dict[str, str]:
    found = await bridge.bridge.storage.query(
        "SELECT key, value FROM bridge_state WHERE key LIKE 'reconcile%'"
    )
    return {r["key"]: r["value"] for r in found}


def metric(bridge: BridgeClient, name: str, **labels: str) -> float:
    return bridge.bridge.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_two_alertmanagers_are_merged(bridge, fakes):
    (one, url1), (two, url2) = fakes
    await webhook(
        bridge,
        am_alert("A", fingerprint="a"),
        am_alert("B", fingerprint="b"),
        am_alert("C", fingerprint="c"),
    )
    # A: active in one, silenced in the other (the one that notifies wins); B: silenced and
    # inhibited where it is known; C: in neither any more.
    one.alerts = [api_alert("A", "a"), api_alert("Outage", "o")]
    two.alerts = [
        api_alert("A", "a", state="suppressed", silenced_by=("s-a",)),
        api_alert("B", "b", state="suppressed", silenced_by=("s-b",), inhibited_by=("o",)),
    ]
    two.silences = [{"id": "s-b", "endsAt": "2026-03-01T12:00:00.000Z", "status": {}}]
    outcome = await reconciler(bridge, url1, url2).reconcile_once()
    assert (outcome.reachable, outcome.unreachable) == (2, 0)
    assert (outcome.vanished, outcome.suppressed) == (1, 1)
    found = await rows(bridge)
    assert found["a"]["status"] == "firing"
    assert found["a"]["silenced"] == "[]"
    assert found["b"]["status"] == "firing"
    assert '"id": "s-b"' in found["b"]["silenced"]
    assert "2026-03-01T12:00:00" in found["b"]["silenced"]
    assert '"alertname": "Outage"' in found["b"]["inhibited"]
    assert found["c"]["status"] == "resolved"
    assert found["c"]["resolved_reason"] == "vanished"
    assert found["c"]["ends_at"] == bridge.clock()
    # The Outage only Alertmanager knows (the webhook lost it) is stored and routed.
    assert outcome.missed == 1
    outage = await bridge.bridge.storage.query(
        "SELECT status FROM payment_alerts WHERE fingerprint = 'o'"
    )
    assert outage == [{"status": "firing"}]
    assert metric(bridge, "passiton_bridge_reconciled_total", kind="missed") == 1
    assert (await state(bridge)).keys() == {"reconcile_last_at"}

    # Once more changes nothing; B's silence ending makes it active again: cleared.
    again = await reconciler(bridge, url1, url2).reconcile_once()
    assert (again.vanished, again.missed) == (0, 0)
    two.alerts[1] = api_alert("B", "b")
    await reconciler(bridge, url1, url2).reconcile_once()
    found = await rows(bridge)
    assert (found["b"]["silenced"], found["b"]["inhibited"]) == ("[]", "[]")


async def test_silenced_then_gone_is_resolved_while_silenced(bridge, fakes):
    (one, url), _ = fakes
    await webhook(bridge, am_alert("A", fingerprint="a"))
    one.alerts = [api_alert("A", "a", state="suppressed", silenced_by=("s-1",))]
    await reconciler(bridge, url).reconcile_once()
    one.alerts = []
    bridge.clock.advance(30)
    outcome = await reconciler(bridge, url).reconcile_once()
    assert outcome.vanished == 1
    found = (await rows(bridge))["a"]
    assert (found["status"], found["resolved_reason"]) == ("resolved", "resolved while silenced")
    assert found["resolved_at"] == found["ends_at"] == bridge.clock()
    assert metric(bridge, "passiton_bridge_reconciled_total", kind="resolved_while_silenced") == 1


async def test_missed_alert_is_stored_once_with_the_webhook(bridge, fakes):
    (one, url), _ = fakes
    one.alerts = [api_alert("A", "a")]
    assert (await reconciler(bridge, url).reconcile_once()).missed == 1
    # The webhook that was late brings the same instance: nothing new, nobody paged twice.
    await webhook(bridge, am_alert("A", fingerprint="a"))
    assert (await reconciler(bridge, url).reconcile_once()).missed == 0
    found = await bridge.bridge.storage.query("SELECT count(*) AS n FROM payment_alerts")
    assert found == [{"n": 1}]
    deliveries = await bridge.bridge.storage.query("SELECT count(*) AS n FROM alert_deliveries")
    assert deliveries == [{"n": 1}]


async def test_young_and_suppressed_alerts_are_not_missed(bridge, fakes):
    (one, url), _ = fakes
    young = bridge.clock() - timedelta(seconds=10)  # Alertmanager is still in group_wait
    one.alerts = [
        api_alert("Young", "y", starts_at=young),
        api_alert("Quiet", "q", state="suppressed", silenced_by=("s",)),
        api_alert("Watchdog", "w"),
    ]
    assert (await reconciler(bridge, url).reconcile_once()).missed == 0
    assert await rows(bridge) == {}


async def test_unreachable_changes_nothing_and_is_recorded(bridge, fakes):
    (one, url), _ = fakes
    await webhook(bridge, am_alert("A", fingerprint="a"))
    one.alerts = [api_alert("A", "a", state="suppressed", silenced_by=("s-1",))]
    await reconciler(bridge, url).reconcile_once()
    first = bridge.clock()

    one.status = 503
    bridge.clock.advance(30)
    outcome = await reconciler(bridge, url, DOWN).reconcile_once()
    assert (outcome.reachable, outcome.unreachable) == (0, 2)
    bridge.clock.advance(30)
    await reconciler(bridge, url).reconcile_once()
    found = (await rows(bridge))["a"]
    assert found["status"] == "firing"
    assert '"s-1"' in found["silenced"]  # the last known state
    recorded = await state(bridge)
    assert recorded["reconcile_last_at"] == first.isoformat()
    assert recorded["reconcile_unreachable_since"] == (first + timedelta(seconds=30)).isoformat()
    assert "HTTP 503" in recorded["reconcile_error"]
    assert metric(bridge, "passiton_bridge_reconcile_failures_total") == 3

    one.status = 200
    one.alerts = []
    bridge.clock.advance(30)
    await reconciler(bridge, url).reconcile_once()
    assert (await state(bridge)).keys() == {"reconcile_last_at"}
    assert (await rows(bridge))["a"]["resolved_reason"] == "resolved while silenced"


async def test_one_of_two_down_resolves_nothing(bridge, fakes):
    (one, url), _ = fakes
    await webhook(bridge, am_alert("A", fingerprint="a"), am_alert("B", fingerprint="b"))
    one.alerts = [api_alert("A", "a", state="suppressed", silenced_by=("s-1",))]
    outcome = await reconciler(bridge, url, DOWN).reconcile_once()
    assert (outcome.reachable, outcome.unreachable, outcome.vanished) == (1, 1, 0)
    found = await rows(bridge)
    assert found["b"]["status"] == "firing"  # the other may still have it
    assert '"s-1"' in found["a"]["silenced"]
    recorded = await state(bridge)
    assert "reconcile_unreachable_since" not in recorded
    assert DOWN in recorded["reconcile_error"]


async def test_a_restarted_alertmanager_resolves_nothing(bridge, fakes):
    (one, url), _ = fakes
    await webhook(bridge, am_alert("A", fingerprint="a"))
    # Alertmanager keeps no alerts over a restart: empty until Prometheus sends them again.
    one.uptime = (bridge.clock() - timedelta(seconds=30)).isoformat()
    assert (await reconciler(bridge, url).reconcile_once()).vanished == 0
    assert (await rows(bridge))["a"]["status"] == "firing"
    bridge.clock.advance(120)
    assert (await reconciler(bridge, url).reconcile_once()).vanished == 1


def test_config_reads_every_alertmanager():
    config = BridgeConfig.from_env(
        {
            "BRIDGE_WEBHOOK_TOKEN": "x" * 32,
            "ALERTMANAGER_URL": "http://am-1:9093/, http://am-2:9093",
            "BRIDGE_RECONCILE_INTERVAL_SECONDS": "0",
        }
    )
    assert config.alertmanager_url == "http://am-1:9093"  # links, silences, doctor
    assert config.alertmanager_api_urls == ("http://am-1:9093", "http://am-2:9093")
    assert config.reconcile_interval_seconds == 0
    assert BridgeConfig().reconcile_interval_seconds == 30
    assert BridgeConfig(alertmanager_url="http://am:1").alertmanager_api_urls == ("http://am:1",)


async def test_the_bridge_runs_the_reconciler_every_interval(db_url, aiohttp_client, fakes):
    (one, url1), (two, url2) = fakes
    config = make_config(
        db_url,
        alertmanager_url=url1,
        alertmanager_urls=(url1, url2),
        reconcile_interval_seconds=0.05,
    )
    app = create_app(config, notifiers=notifiers("slack"))
    await aiohttp_client(app)
    await wait_until(lambda: one.reads >= 2 and two.reads >= 2)
    assert "reconcile_last_at" in await state(BridgeClient(None, app[BRIDGE]))


async def test_an_active_alert_that_vanished_waits_for_its_webhook_resolve(bridge, fakes):
    """Alertmanager sends the resolve of an active alert at the group's next flush: the
    reconciler leaves it that long, so the resolve still reaches the channels (a silenced one
    gets no resolve from Alertmanager and is resolved at once: the test above)."""
    (one, url), _ = fakes
    await webhook(bridge, am_alert("A", fingerprint="a"))
    bridge.clock.advance(300)
    one.alerts = []  # resolved in Alertmanager, its webhook resolve not sent yet
    patient = reconciler(bridge, url, grace=2700)
    assert (await patient.reconcile_once()).vanished == 0
    bridge.clock.advance(1800)
    assert (await patient.reconcile_once()).vanished == 0
    assert (await rows(bridge))["a"]["status"] == "firing"
    bridge.clock.advance(901)
    assert (await patient.reconcile_once()).vanished == 1
    assert (await rows(bridge))["a"]["status"] == "resolved"


def racing(ingest, barrier: asyncio.Barrier):
    """``ingest`` called once every replica has got that far: both read the alert as firing
    before either resolves it, so they race at the database."""

    async def call(notification):
        await barrier.wait()
        return await ingest(notification)

    return call


async def incident_deliveries(bridge: BridgeClient) -> list[tuple[str, str, int | None]]:
    found = await bridge.bridge.storage.query(
        "SELECT channel, message->>'status' AS status, (message->>'incident_id')::bigint AS inc"
        " FROM alert_deliveries ORDER BY id"
    )
    return [(r["channel"], r["status"], r["inc"]) for r in found]


async def test_a_silenced_alert_resolved_by_two_reconcilers_resolves_its_incident_once(
    db_url, aiohttp_client, fakes
):
    """Alertmanager sends no resolve for a silenced alert: the reconciler's resolve goes through
    the ingest, so the incident resolves with its last alert and its resolve is paged once,
    however many replicas reconcile at the same moment."""
    (one, url), _ = fakes
    clock = Clock(T0 + timedelta(minutes=10))
    replicas = []
    for _ in range(2):
        chans = notifiers("slack", "pagerduty")
        app = create_app(make_config(db_url), notifiers=chans, clock=clock, workers=False)
        replicas.append(BridgeClient(await aiohttp_client(app), app[BRIDGE], chans, clock))
    first = replicas[0]
    name = "PaymentFailureRatioHigh"
    critical = am_alert(name, fingerprint="a", severity="critical", organization_id="org-1")
    high = am_alert(name, fingerprint="b", organization_id="org-2")
    await webhook(first, critical, high)
    [incident] = await first.bridge.storage.incidents()
    assert (incident.severity, incident.alert_count) == ("critical", 2)
    assert sorted(await incident_deliveries(first)) == [
        ("pagerduty", "firing", incident.id),
        ("slack", "firing", incident.id),
    ]

    # The critical one is silenced; the other resolves the usual way: the incident stays open.
    one.alerts = [api_alert(name, "a", state="suppressed", silenced_by=("s-1",))]
    await reconciler(first, url).reconcile_once()
    clock.advance(30)
    resolved_high = dict(high, status="resolved", endsAt=clock().isoformat())
    await webhook(first, resolved_high)
    assert [i.status for i in await first.bridge.storage.incidents()] == ["firing"]
    assert len(await incident_deliveries(first)) == 2

    # It resolves while silenced: gone from Alertmanager, no webhook. Two replicas at once.
    one.alerts = []
    clock.advance(30)
    barrier = asyncio.Barrier(2)
    racers = [
        Reconciler(
            r.bridge.storage,
            racing(r.bridge.ingest, barrier),
            r.bridge.metrics,
            clock,
            (url,),
            interval_seconds=0,
            vanish_after_uptime_seconds=0,
        )
        for r in replicas
    ]
    outcomes = await asyncio.gather(*(r.reconcile_once() for r in racers))
    assert sorted(o.vanished for o in outcomes) == [0, 1]
    assert (
        sum(
            metric(r, "passiton_bridge_reconciled_total", kind="resolved_while_silenced")
            for r in replicas
        )
        == 1
    )

    [incident] = await first.bridge.storage.incidents()
    assert (incident.status, incident.resolved_at) == ("resolved", clock())
    assert sorted(await incident_deliveries(first)) == [
        ("pagerduty", "firing", incident.id),
        ("pagerduty", "resolved", incident.id),
        ("slack", "firing", incident.id),
        ("slack", "resolved", incident.id),
    ]
    found = (await rows(first))["a"]
    assert (found["status"], found["ends_at"]) == ("resolved", clock())
    assert (found["resolved_reason"], found["resolved_at"]) == ("resolved while silenced", clock())
    timeline = await first.bridge.storage.query(
        "SELECT kind, detail->>'fingerprint' AS fp FROM incident_events ORDER BY id"
    )
    assert [(t["kind"], t["fp"]) for t in timeline][-4:] == [
        ("alert_resolved", "b"),
        ("alert_resolved", "a"),
        ("resolved", None),
        ("paged_resolved", None),
    ]

    # Once more, from either replica: nothing moves, nothing is sent, the reason stays.
    clock.advance(30)
    for r in racers:
        assert (await r.reconcile_once()).vanished == 0
    assert len(await incident_deliveries(first)) == 4
    assert (await rows(first))["a"]["resolved_at"] == clock() - timedelta(seconds=30)


async def test_a_vanished_alert_resolves_like_a_webhook_resolve(bridge, fakes):
    """An active alert gone from every Alertmanager past the grace (its webhook resolve was
    lost): resolved through the ingest, with its incident, and the resolve reaches the channel."""
    (one, url), _ = fakes
    await webhook(bridge, am_alert("A", fingerprint="a"))
    one.alerts = []
    bridge.clock.advance(60)
    outcome = await reconciler(bridge, url, grace=30).reconcile_once()
    assert outcome.vanished == 0  # first seen missing now: the grace starts
    patient = reconciler(bridge, url, grace=30)
    assert (await patient.reconcile_once()).vanished == 0
    bridge.clock.advance(31)
    assert (await patient.reconcile_once()).vanished == 1
    [incident] = await bridge.bridge.storage.incidents()
    assert incident.status == "resolved"
    assert [d[1] for d in await incident_deliveries(bridge)] == ["firing", "resolved"]
    found = (await rows(bridge))["a"]
    assert (found["status"], found["resolved_reason"]) == ("resolved", "vanished")
    assert metric(bridge, "passiton_bridge_reconciled_total", kind="vanished") == 1


def test_config_reads_the_incident_window_and_the_reconciler_s_minimum_uptime():
    config = BridgeConfig.from_env(
        {
            "BRIDGE_WEBHOOK_TOKEN": "x" * 32,
            "BRIDGE_INCIDENT_WINDOW_SECONDS": "8",
            "BRIDGE_RECONCILE_MIN_UPTIME_SECONDS": "0",
        }
    )
    assert (config.incident_window_seconds, config.reconcile_min_uptime_seconds) == (8, 0)
    assert (
        BridgeConfig().incident_window_seconds,
        BridgeConfig().reconcile_min_uptime_seconds,
    ) == (
        1800,
        120,
    )
