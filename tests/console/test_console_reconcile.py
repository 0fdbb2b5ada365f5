"""What Alertmanager knows, in the bridge and on the console: a REAL Alertmanager (its alerts
API, a silence, an inhibition rule), the reconciler, and the Now and alert pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.app import BRIDGE
from bridge.reconcile import Reconciler
from passiton_monitoring.bridge_process import create_bridge_app
from tests import plain_http
from tests.bridge.support import BridgeClient, Clock, make_config, notifiers
from tests.console.support import NO_ROUTE, add_users, fire, login, real_alertmanager

INHIBITING = NO_ROUTE + (
    "inhibit_rules:\n"
    "  - source_matchers: ['alertname=\"PaymentOutage\"']\n"
    "    target_matchers: ['alertname=\"PaymentLatencyHigh\"']\n"
    "    equal: ['organization_id']\n"
)


@pytest.fixture
def alertmanager() -> Iterator[str]:
    # One per test: the reconciler stores whatever alerts it holds, so no other test's may be
    # there (and Alertmanager cannot delete an alert).
    with real_alertmanager(INHIBITING) as url:
        yield url


@pytest.fixture
async def site(db_url, aiohttp_client, alertmanager):
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    config = make_config(db_url, alertmanager_url=alertmanager)
    app = create_bridge_app(config, notifiers=notifiers("slack"), clock=clock, workers=False)
    client = BridgeClient(await aiohttp_client(app), app[BRIDGE], {}, clock, alertmanager)
    await add_users(client.bridge.storage, clock())
    await login(client, "viewer")
    return client


def reconciler(site: BridgeClient, *urls: str) -> Reconciler:
    b = site.bridge
    return Reconciler(
        b.storage,
        b.ingest,
        b.metrics,
        site.clock,
        urls or (site.alertmanager,),
        interval_seconds=0,
        vanish_after_uptime_seconds=0,  # the test's Alertmanager has just started
        missed_after_seconds=60,
    )


def post_alert(url: str, name: str, org: str, *, starts: datetime, ends: datetime) -> None:
    alert = {
        "labels": {
            "alertname": name,
            "severity": "high",
            "category": "payment",
            "organization_id": org,
        },
        "annotations": {"summary": f"{name} for {org}"},
        "startsAt": starts.isoformat(),
        "endsAt": ends.isoformat(),
        "generatorURL": "http://prometheus.test/graph",
    }
    plain_http.post(f"{url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def shown(url: str, name: str, org: str) -> dict[str, Any]:
    """The alert as Alertmanager's API shows it."""
    found = [
        a
        for a in plain_http.get(f"{url}/api/v2/alerts", timeout=5).json()
        if a["labels"]["alertname"] == name and a["labels"].get("organization_id") == org
    ]
    assert len(found) == 1, found
    return found[0]


def silence(url: str, name: str, org: str, ends: datetime) -> str:
    matchers = [
        {"name": "alertname", "value": name, "isRegex": False, "isEqual": True},
        {"name": "organization_id", "value": org, "isRegex": False, "isEqual": True},
    ]
    response = plain_http.post(
        f"{url}/api/v2/silences",
        json={
            "matchers": matchers,
            "startsAt": datetime.now(UTC).isoformat(),
            "endsAt": ends.isoformat(),
            "createdBy": "test",
            "comment": "maintenance",
        },
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["silenceID"]


async def alert_url(site: BridgeClient, org: str) -> str:
    rows = await site.bridge.storage.query(
        f"SELECT id FROM payment_alerts WHERE organization_id = '{org}'"  # noqa: S608
    )
    assert len(rows) == 1, rows
    return f"/console/alerts/payment_alerts/{rows[0]['id']}"


async def page(site: BridgeClient, path: str) -> str:
    response = await site.get(path)
    assert response.status == 200
    return await response.text()


async def test_silenced_alert_that_resolves_is_resolved_within_one_reconcile(site):
    am, now = site.alertmanager, site.clock()
    post_alert(
        am,
        "PaymentFailureRateHigh",
        "org-s",
        starts=now - timedelta(minutes=5),
        ends=now + timedelta(hours=1),
    )
    # The webhook never came (lost): the reconciler stores it, routed like a webhook alert.
    assert (await reconciler(site).reconcile_once()).missed == 1
    api = shown(am, "PaymentFailureRateHigh", "org-s")
    # ... and when Alertmanager's notification arrives after all, it is the same instance.
    await fire(
        site,
        fingerprint=api["fingerprint"],
        organization_id="org-s",
        starts_at=datetime.fromisoformat(api["startsAt"]),
    )
    assert await site.bridge.storage.query("SELECT count(*) AS n FROM payment_alerts") == [{"n": 1}]
    until = now + timedelta(hours=2)
    silence_id = silence(am, "PaymentFailureRateHigh", "org-s", until)
    assert (await reconciler(site).reconcile_once()).suppressed == 1
    chip = f"silenced (silence {silence_id}, until {until:%Y-%m-%d %H:%M:%S} UTC)"
    now_page = await page(site, "/console/?all=1")
    assert chip in now_page
    # its incident's only firing alert is silenced: the incident shows silenced
    assert '<span class="chip state silenced">silenced</span>' in now_page
    assert "0 firing</span> incidents · 1 silenced ·" in now_page
    url = await alert_url(site, "org-s")
    assert chip in await page(site, url)

    # It resolves while silenced: Alertmanager will never send that resolve.
    post_alert(
        am,
        "PaymentFailureRateHigh",
        "org-s",
        starts=now - timedelta(minutes=5),
        ends=datetime.now(UTC) - timedelta(seconds=1),
    )
    site.clock.advance(30)
    outcome = await reconciler(site).reconcile_once()
    assert outcome.vanished == 1
    rows = await site.bridge.storage.query(
        "SELECT a.status, a.ends_at, s.resolved_reason FROM payment_alerts a"
        " JOIN alert_suppression s USING (fingerprint, starts_at)"
    )
    assert rows == [
        {
            "status": "resolved",
            "ends_at": site.clock(),
            "resolved_reason": "resolved while silenced",
        }
    ]
    stamp = f"{site.clock():%Y-%m-%d %H:%M:%S}"
    text = await page(site, url)
    assert f"resolved while silenced at {stamp} UTC" in text
    assert "silenced (silence" not in text
    now_page = await page(site, "/console/")
    assert "0 alerts firing" in now_page
    assert f"resolved while silenced at {stamp} UTC" in now_page


async def test_inhibited_alert_names_the_inhibiting_alert(site):
    am, now = site.alertmanager, site.clock()
    ends = now + timedelta(hours=1)
    post_alert(am, "PaymentLatencyHigh", "org-i", starts=now - timedelta(minutes=5), ends=ends)
    post_alert(am, "PaymentOutage", "org-i", starts=now - timedelta(minutes=5), ends=ends)
    target = shown(am, "PaymentLatencyHigh", "org-i")
    assert target["status"]["state"] == "suppressed"
    await fire(
        site,
        name="PaymentLatencyHigh",
        fingerprint=target["fingerprint"],
        organization_id="org-i",
        starts_at=datetime.fromisoformat(target["startsAt"]),
    )
    outcome = await reconciler(site).reconcile_once()
    assert outcome.suppressed == 1
    assert outcome.missed == 1  # the outage itself, which no webhook brought
    assert "inhibited by PaymentOutage" in await page(site, "/console/?all=1")
    rows = await site.bridge.storage.query(
        "SELECT id FROM payment_alerts WHERE alertname = 'PaymentLatencyHigh'"
    )
    text = await page(site, f"/console/alerts/payment_alerts/{rows[0]['id']}")
    assert "inhibited by PaymentOutage" in text


async def test_alertmanager_down_keeps_the_last_state_and_says_so(site):
    am, now = site.alertmanager, site.clock()
    post_alert(
        am,
        "PaymentFailureRateHigh",
        "org-d",
        starts=now - timedelta(minutes=5),
        ends=now + timedelta(hours=1),
    )
    await reconciler(site).reconcile_once()
    silence_id = silence(am, "PaymentFailureRateHigh", "org-d", now + timedelta(hours=2))
    await reconciler(site).reconcile_once()
    last = site.clock()

    site.clock.advance(60)
    outcome = await reconciler(site, "http://127.0.0.1:9").reconcile_once()
    assert outcome.reachable == 0
    text = await page(site, "/console/?all=1")
    since = f"{site.clock():%Y-%m-%d %H:%M:%S}"
    assert f"Alertmanager is unreachable since {since} UTC" in text
    assert f"last known state, reconciled at {last:%Y-%m-%d %H:%M:%S} UTC" in text
    assert "PaymentFailureRateHigh for org-d" in text  # still listed as firing
    assert f"silenced (silence {silence_id}" in text  # the last known state
    assert "Alertmanager is unreachable" in await page(site, await alert_url(site, "org-d"))

    site.clock.advance(30)
    await reconciler(site).reconcile_once()
    assert "unreachable" not in await page(site, "/console/")


async def test_alert_without_reconcile_data_shows_nothing_extra(site):
    await fire(
        site,
        organization_id="org-n",
        starts_at=site.clock() - timedelta(minutes=1),
        fingerprint="feedf00d00000001",
    )
    text = await page(site, "/console/")
    assert "silenced (" not in text
    assert "inhibited by" not in text
    assert "unreachable" not in text
    assert "silenced (" not in await page(site, await alert_url(site, "org-n"))
