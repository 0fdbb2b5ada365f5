"""The bridge with its real channels, configured from the environment, against the local fakes
of Slack, PagerDuty, Twilio and an SMTP server: the whole path from webhook to third party."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.app import BRIDGE, create_app
from bridge.channels.pagerduty import incident_dedup_key
from bridge.config import BridgeConfig
from tests.bridge.support import (
    AUTH,
    T0,
    TOKEN,
    BridgeClient,
    Clock,
    am_alert,
    body,
    count,
    payload,
)
from tests.fakes.twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

SMS_TO = "+14155550111"


@pytest.fixture
async def stack(db_url, aiohttp_client, fake_slack, fake_pagerduty, fake_twilio, fake_smtp):
    env = {
        "DATABASE_URL": db_url,
        "BRIDGE_WEBHOOK_TOKEN": TOKEN,
        "BRIDGE_DEADMAN_AFTER_SECONDS": "0",
        "BRIDGE_COOLDOWN_SECONDS": "0",
        "BRIDGE_RETRY_INITIAL_SECONDS": "0.01",
        "BRIDGE_RETRY_MAX_DELAY_SECONDS": "0.01",
        "SLACK_WEBHOOK_URL": fake_slack.webhook_url,
        "PAGERDUTY_INTEGRATION_KEY": "0123456789abcdef0123456789abcdef",
        "PAGERDUTY_EVENTS_URL": fake_pagerduty.events_url,
        "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": "+15005550006",
        "TWILIO_API_URL": fake_twilio.base_url,
        "ALERT_SMS_RECIPIENTS": SMS_TO,
        "SMTP_HOST": fake_smtp.host,
        "SMTP_PORT": str(fake_smtp.port),
        "SMTP_TLS": "none",
        "ALERT_EMAIL_RECIPIENTS": "ops@passiton.test",
        "ALERT_EMAIL_FROM": "alerts@passiton.test",
    }
    config = BridgeConfig.from_env(env)
    # A clock moved by drain(): a retry is due in the next round, never within the same one
    # (with the real clock, a slow machine made it due before run_once finished).
    clock = Clock(datetime.now(UTC))
    app = create_app(config, workers=False, clock=clock)
    client = BridgeClient(await aiohttp_client(app), app[BRIDGE], clock=clock)
    assert sorted(client.bridge.notifiers) == ["email", "pagerduty", "slack", "sms"]
    return client


async def post(client, *alerts):
    response = await client.post("/v1/alertmanager", data=body(payload(*alerts)), headers=AUTH)
    assert response.status == 200, await response.text()


async def drain(client, rounds: int = 5):
    for _ in range(rounds):
        await client.bridge.delivery.run_once()
        client.clock.advance(1)


async def test_critical_group_reaches_every_channel_and_resolves_on_pagerduty(
    stack, fake_slack, fake_pagerduty, fake_twilio, fake_smtp
):
    a = am_alert("PaymentFailureRateHigh", fingerprint="aaaa000000000001", severity="critical")
    b = am_alert(
        "PaymentFailureRateHigh",
        fingerprint="aaaa000000000002",
        severity="critical",
        organization_id="org-2",
    )
    await post(stack, a, b)
    await drain(stack)
    assert len(fake_slack.messages) == 1  # one message for the group
    assert "PaymentFailureRateHigh" in str(fake_slack.messages[0])
    assert [m["To"] for m in fake_twilio.messages] == [SMS_TO]
    assert len(fake_smtp.messages) == 1
    assert fake_smtp.messages[0].rcpt_tos == ("ops@passiton.test",)
    # One incident (the same alert in two organizations): one PagerDuty event keyed by the
    # incident (before incidents: one event and one dedup_key per alert).
    [trigger] = [e for e in fake_pagerduty.events if e["event_action"] == "trigger"]
    assert trigger["dedup_key"] == incident_dedup_key(1)

    def resolve(fingerprint: str) -> dict:
        return am_alert(
            "PaymentFailureRateHigh",
            fingerprint=fingerprint,
            severity="critical",
            status="resolved",
            ends_at=T0 + timedelta(minutes=3),
            organization_id="org-2" if fingerprint.endswith("2") else "org-1",
        )

    await post(stack, resolve("aaaa000000000001"))  # the incident still has a firing alert
    await drain(stack)
    assert [e["event_action"] for e in fake_pagerduty.events] == ["trigger"]
    assert len(fake_slack.messages) == 1
    await post(stack, resolve("aaaa000000000002"))  # its last alert: the incident resolves
    await post(stack, resolve("aaaa000000000002"))  # Alertmanager retries: nobody hears it twice
    await drain(stack)
    resolves = [e for e in fake_pagerduty.events if e["event_action"] == "resolve"]
    assert len(resolves) == 1
    key = resolves[0]["dedup_key"]
    assert key == trigger["dedup_key"]
    assert fake_pagerduty.incidents == {key: "resolved"}
    assert len(fake_slack.messages) == 2
    assert len(fake_twilio.messages) == 2
    assert len(fake_smtp.messages) == 2


async def test_transient_errors_are_retried_and_permanent_ones_dead_lettered(
    stack, fake_slack, fake_pagerduty
):
    fake_slack.script(503, "service_unavailable")
    fake_pagerduty.script(400, {"status": "invalid event", "errors": ["bad"]})
    await post(stack, am_alert(fingerprint="bbbb000000000001", severity="critical"))
    await drain(stack, rounds=1)
    assert fake_slack.messages == []
    states = await stack.bridge.storage.query(
        "SELECT channel, state, last_error FROM alert_deliveries ORDER BY channel"
    )
    by_channel = {r["channel"]: (r["state"], r["last_error"]) for r in states}
    assert by_channel["slack"][0] == "pending"
    assert by_channel["pagerduty"][0] == "dead"
    await drain(stack)
    assert len(fake_slack.messages) == 1
    assert await count(stack.bridge.storage, "alert_deliveries", "WHERE state = 'sent'") == 3
    text = await (await stack.get("/metrics")).text()
    assert 'passiton_bridge_dead_letters_total{channel="pagerduty"} 1.0' in text
    assert 'passiton_bridge_deliveries_total{channel="slack",outcome="retry"} 1.0' in text
