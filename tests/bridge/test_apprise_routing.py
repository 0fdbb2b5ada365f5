"""Apprise in the bridge: the severity table adds it where ``APPRISE_URLS_<SEVERITY>`` is set
(recipients: those URLs), organizations' preferences still decide, and an on-call step with
``via: apprise`` pages the person's Apprise URLs; through the real outbox to a local ntfy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bridge.app import BRIDGE, create_app
from bridge.channels.apprise import AppriseNotifier
from bridge.channels.config import AppriseSettings, ChannelsConfig
from bridge.channels.registry import build_notifiers
from bridge.oncall.config import load_oncall
from bridge.routing import Route, Router
from bridge.storage.types import PreferenceRow
from tests.bridge.channel_support import make_alert
from tests.bridge.support import (
    AUTH,
    BridgeClient,
    Clock,
    am_alert,
    make_config,
    notifiers,
    payload,
)
from tests.fakes.notify_targets import FakeNtfy

CRIT, LOW, ORG = "ntfys://ntfy.example.org/crit", "json://hooks.example.org/low", "org-123"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def ntfy() -> AsyncIterator[FakeNtfy]:
    async with FakeNtfy() as server:
        yield server  # type: ignore[misc]


def ntfy_url(server: FakeNtfy, topic: str) -> str:
    return f"ntfy://{server.base_url.removeprefix('http://')}/{topic}"


def router(*prefs: PreferenceRow) -> Router:
    available = ("slack", "email", "pagerduty", "sms", "apprise")
    r = Router(available, apprise_urls={"critical": (CRIT,), "low": (LOW,), "high": ()})
    r.load(prefs, [], "1")
    return r


def prefs(channels: object, recipients: dict[str, list[str]] | None = None) -> PreferenceRow:
    return PreferenceRow(ORG, channels, recipients or {}, "low", None, None, "UTC")


def routes(r: Router, severity: str) -> list[Route]:
    return r.routes(make_alert(severity=severity, organization_id=ORG), NOW)


def test_the_severity_table_adds_apprise_where_its_urls_are_set() -> None:
    r = router()
    assert Route("apprise", (CRIT,)) in routes(r, "critical")
    assert [x.channel for x in routes(r, "high")] == ["slack", "email"]
    assert routes(r, "low") == [Route("email"), Route("apprise", (LOW,))]


def test_an_organizations_preferences_still_decide() -> None:
    # its own channel list replaces the defaults, Apprise included
    assert [x.channel for x in routes(router(prefs(["slack"])), "critical")] == ["slack"]
    # naming Apprise for a severity without URLs: no route (nobody to send to)
    assert [x.channel for x in routes(router(prefs({"high": ["slack", "apprise"]})), "high")] == [
        "slack"
    ]
    # ... unless the organization gives its own Apprise URLs
    own = prefs({"high": ["apprise"]}, {"apprise": ["ntfys://ntfy.example.org/org"]})
    assert routes(router(own), "high") == [Route("apprise", ("ntfys://ntfy.example.org/org",))]


def test_apprise_is_built_for_the_table_and_for_the_oncall_file() -> None:
    table = ChannelsConfig(apprise=AppriseSettings({"critical": (CRIT,)}))
    assert sorted(build_notifiers(table)) == ["apprise"]
    # only the on-call people's URLs: Apprise is on, the severity table still prints
    assert sorted(build_notifiers(ChannelsConfig(), oncall=True)) == ["apprise", "console"]
    assert sorted(build_notifiers(ChannelsConfig())) == ["console"]


async def test_a_critical_alert_reaches_the_critical_urls_through_the_outbox(
    db_url, aiohttp_client, ntfy
):
    url = ntfy_url(ntfy, "passiton-critical")
    channels = ChannelsConfig(apprise=AppriseSettings({"critical": (url,)}))
    chans = {**notifiers("slack", "email"), "apprise": AppriseNotifier(channels.apprise.urls)}
    app = create_app(
        make_config(db_url, channels=channels), notifiers=chans, clock=Clock(), workers=False
    )
    client = BridgeClient(await aiohttp_client(app), app[BRIDGE], chans, Clock())
    for alert in (
        am_alert("Minor", fingerprint="h1", severity="high"),
        am_alert("PaymentProcessingFailures", fingerprint="c1", severity="critical"),
    ):
        response = await client.post("/v1/alertmanager", json=payload(alert), headers=AUTH)
        assert response.status == 200
    while await client.bridge.delivery.run_once():
        pass
    [page] = ntfy.messages
    assert page["topic"] == "passiton-critical"
    assert "PaymentProcessingFailures" in page["title"]
    assert len(client.chans["slack"].messages) == 2


ONCALL = """\
people:
  - id: alice
    name: Alice Example
    contacts: {apprise: ["{URL}"], slack: U0ALICE}
schedules:
  - id: primary
    time_zone: UTC
    rotation: {type: daily, handoff: "09:00", start: "2026-02-23", people: [alice]}
escalation_policies:
  - id: default
    steps:
      - {notify: ["schedule:primary"], via: [apprise]}
routes:
  - {matchers: ['severity="critical"'], policy: default}
"""


async def test_an_oncall_step_via_apprise_pages_the_persons_urls(
    db_url, aiohttp_client, ntfy, tmp_path
):
    path = tmp_path / "oncall.yml"
    path.write_text(ONCALL.replace("{URL}", ntfy_url(ntfy, "alice-phone")))
    chans = {**notifiers("slack"), "apprise": AppriseNotifier()}
    clock = Clock()
    app = create_app(
        make_config(db_url, channels=ChannelsConfig()),
        notifiers=chans,
        clock=clock,
        workers=False,
        oncall=load_oncall(path),
    )
    client = BridgeClient(await aiohttp_client(app), app[BRIDGE], chans, clock)
    alert = am_alert("PaymentProcessingFailures", fingerprint="c1", severity="critical")
    response = await client.post("/v1/alertmanager", json=payload(alert), headers=AUTH)
    assert response.status == 200
    assert await client.bridge.escalator.run_once() == 1
    while await client.bridge.delivery.run_once():
        pass
    [page] = ntfy.messages
    assert page["topic"] == "alice-phone"
    assert "You are on call for this incident" in page["message"]
