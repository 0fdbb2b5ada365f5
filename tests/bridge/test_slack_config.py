"""Slack's Web API settings, mentions in the outbox's JSON, and the bridge configured from the
environment for the Web API: webhook to the fake Slack's thread through the real database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from bridge.app import BRIDGE, create_app
from bridge.channels.config import DEFAULT_SLACK_API_URL, ChannelsConfig
from bridge.channels.registry import build_notifiers
from bridge.channels.slack import SlackNotifier
from bridge.codec import decode_message, encode_message
from bridge.config import BridgeConfig
from bridge.doctor import doctor
from passiton_common.settings import ConfigError
from tests.bridge.channel_support import make_message
from tests.bridge.support import AUTH, TOKEN, BridgeClient, Clock, am_alert, body, payload
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID

WEB = {"SLACK_BOT_TOKEN": "xoxb-1-2-secretbottoken", "SLACK_CHANNEL": "C0ALERTS1"}


def test_web_api_settings():
    config = ChannelsConfig.from_env({**WEB, "SLACK_SIGNING_SECRET": "signing-secret-value"})
    assert config.enabled == ("slack",)
    assert config.slack is not None
    assert config.slack.web_api
    assert config.slack.webhook_url is None
    assert config.slack.api_url == DEFAULT_SLACK_API_URL == "https://slack.com/api"
    assert config.slack_signing_secret == "signing-secret-value"
    for secret in ("secretbottoken", "signing-secret-value"):
        assert secret not in repr(config)
    named = ChannelsConfig.from_env(
        {**WEB, "SLACK_CHANNEL": "#alerts", "SLACK_API_URL": "http://x/api/"}
    )
    assert named.slack is not None
    assert (named.slack.channel, named.slack.api_url) == ("#alerts", "http://x/api")


def test_only_the_signing_secret_turns_no_channel_on():
    config = ChannelsConfig.from_env({"SLACK_SIGNING_SECRET": "signing-secret-value"})
    assert config.enabled == ("console",)
    assert config.slack_signing_secret == "signing-secret-value"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_CHANNEL is required"),
        ({"SLACK_CHANNEL": "C0ALERTS1"}, "SLACK_BOT_TOKEN is required"),
        (
            {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/x", "SLACK_CHANNEL": "C1"},
            "SLACK_BOT_TOKEN",
        ),
        ({**WEB, "SLACK_CHANNEL": "alerts channel"}, "SLACK_CHANNEL must be"),
        ({**WEB, "SLACK_CHANNEL": "<!channel>"}, "SLACK_CHANNEL must be"),
        ({**WEB, "SLACK_BOT_TOKEN": "xoxb 1"}, "whitespace"),
        ({"SLACK_API_URL": "http://x/api"}, "SLACK_API_URL is set"),
    ],
)
def test_half_configured_web_api_is_refused_at_start_up(env, named):
    with pytest.raises(ConfigError, match=named):
        ChannelsConfig.from_env(env)


async def test_doctor_names_the_missing_half(db_url):
    checks = await doctor({"DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-1-2-3"})
    [configuration] = [c for c in checks if c.name == "configuration"]
    assert not configuration.ok
    assert "SLACK_CHANNEL is required when SLACK_BOT_TOKEN is set" in configuration.detail


def test_the_web_api_mode_needs_its_store():
    with pytest.raises(ValueError, match="store"):
        build_notifiers(ChannelsConfig.from_env(WEB))


def test_mentions_survive_the_outbox():
    message = dataclasses.replace(make_message(), mentions=("U0ALICE", "W012ABC"))
    assert decode_message(encode_message(message)) == message
    assert decode_message(encode_message(make_message())).mentions == ()
    # A stored message naming anything else loses it when read back.
    raw = encode_message(message).replace(b'"W012ABC"', b'"<!here>"')
    assert decode_message(raw).mentions == ("U0ALICE",)


@pytest.fixture
async def stack(db_url, aiohttp_client, fake_slack):
    env = {
        "DATABASE_URL": db_url,
        "BRIDGE_WEBHOOK_TOKEN": TOKEN,
        "BRIDGE_DEADMAN_AFTER_SECONDS": "0",
        "BRIDGE_COOLDOWN_SECONDS": "0",
        "BRIDGE_RETRY_INITIAL_SECONDS": "0.01",
        "BRIDGE_RETRY_MAX_DELAY_SECONDS": "0.01",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_CHANNEL": "#alerts",
        "SLACK_API_URL": fake_slack.api_url,
    }
    clock = Clock(datetime.now(UTC))
    app = create_app(BridgeConfig.from_env(env), workers=False, clock=clock)
    client = BridgeClient(await aiohttp_client(app), app[BRIDGE], clock=clock)
    assert isinstance(client.bridge.notifiers["slack"], SlackNotifier)
    return client


async def drain(client, rounds: int = 4):
    for _ in range(rounds):
        await client.bridge.delivery.run_once()
        client.clock.advance(10)


async def test_the_bridge_threads_an_incident_in_slack(stack, fake_slack):
    firing = am_alert("PaymentFailureRateHigh", fingerprint="aaaa000000000001", severity="medium")
    response = await stack.post("/v1/alertmanager", data=body(payload(firing)), headers=AUTH)
    assert response.status == 200
    await drain(stack)
    [parent] = fake_slack.parents()
    assert parent.channel == CHANNEL_ID
    [incident] = await stack.bridge.storage.incidents()
    assert parent.payload["blocks"][0]["text"]["text"].startswith(
        f"[MEDIUM] Incident #{incident.id}"
    )
    assert {b["value"] for b in parent.payload["blocks"][-1]["elements"]} == {str(incident.id)}

    resolved = dict(firing, status="resolved", endsAt="2026-03-01T10:00:00Z")
    response = await stack.post("/v1/alertmanager", data=body(payload(resolved)), headers=AUTH)
    assert response.status == 200
    await drain(stack)
    assert fake_slack.parents() == [parent]
    [reply] = parent.replies
    assert reply.payload["blocks"][0]["text"]["text"].startswith("[RESOLVED]")
    assert parent.payload["blocks"][-1]["type"] != "actions"  # updated in place: no buttons
    [row] = await stack.bridge.storage.query("SELECT slack_thread_ts FROM incidents")
    assert row["slack_thread_ts"] == parent.ts
