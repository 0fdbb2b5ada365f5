"""Secrets hygiene: ``NAME_FILE`` for every secret, minimum token length, no secret in a repr,
in ``doctor``'s output or in ``/-/ready``."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import pytest

from bridge.app import create_app
from bridge.channels.registry import build_notifiers
from bridge.config import BridgeConfig, ConfigError
from bridge.storage import open_storage
from bridge.storage.push import PushSubscriptions
from bridge.storage.slack_messages import SlackMessages
from exporter.config import ExporterConfig
from passiton_common.http_client import async_client
from passiton_common.settings import MIN_TOKEN_LENGTH, SECRET_NAMES, TOKEN_NAMES, read_secrets
from tests.bridge.support import make_config, notifiers
from tests.conftest import PG_ADMIN_URL

PD_KEY = "0123456789abcdef0123456789abcdef"
SECRETS = {
    "BRIDGE_WEBHOOK_TOKEN": "bridge-token-4f8a1c9d2e7b",
    "EXPORTER_INGEST_TOKEN": "ingest-token-9b3e5d1f7a2c",
    "EXPORTER_BEACON_SECRET": "beacon-secret-1a2b3c4d5e6f",
    "STRIPE_WEBHOOK_SECRET": "whsec_0123456789abcdefghij",
    "DATABASE_URL": "postgresql://app:db-password-7c1e@127.0.0.1:1/passiton",
    "PROBE_DATABASE_URL": "postgresql://probe:probe-password-3d9f@127.0.0.1:1/app",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/slackpathsecret",
    "SLACK_BOT_TOKEN": "xoxb-0000-1111-slackbotsecret",
    "SLACK_SIGNING_SECRET": "slack-signing-secret-5e7d",
    "SMTP_PASSWORD": "smtp-password-8e2a",
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "PAGERDUTY_INTEGRATION_KEY": PD_KEY,
    "PAGERDUTY_WEBHOOK_SECRET": "pd-webhook-secret-5e9c2a",
    "APPRISE_URLS_CRITICAL": "ntfys://ntfy.example.org/critical-topic-6b1d",
    "APPRISE_URLS_HIGH": "tgram://123456789:telegram-bot-token-2f7e/-100987",
    "APPRISE_URLS_MEDIUM": "json://hooks:json-password-9a4c@hooks.example.org/medium",
    "APPRISE_URLS_LOW": "gotify://gotify.example.org/gotify-token-3c8b",
    "WEBPUSH_VAPID_PRIVATE_KEY": "r9wtVmOV6Wda5vKHRxGH05CPjAbIqRDRTqtmKr2AvDE",
    "OIDC_CLIENT_SECRET": "oidc-client-secret-8d2f6a",
}
CHANNELS = {
    "SLACK_CHANNEL": "C0ALERTS1",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_USERNAME": "mailer",
    "ALERT_EMAIL_RECIPIENTS": "oncall@example.org",
    "ALERT_EMAIL_FROM": "alerts@example.org",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_PHONE_NUMBER": "+15550000000",
    "ALERT_SMS_RECIPIENTS": "+15550000001",
    "WEBPUSH_SUBJECT": "mailto:oncall@example.org",
    "OIDC_ISSUER": "https://id.example.org",
    "OIDC_CLIENT_ID": "passiton-console",
    "OIDC_ROLE_MAP": "engineers=responder",
}
# What must never be printed: the values, and the password part of the URLs.
NEVER_SHOWN = (
    *SECRETS.values(),
    "db-password-7c1e",
    "probe-password-3d9f",
    "slackpathsecret",
    "critical-topic-6b1d",
    "telegram-bot-token-2f7e",
    "json-password-9a4c",
    "gotify-token-3c8b",
)


def test_every_secret_can_come_from_a_file(tmp_path):
    assert set(SECRETS) == set(SECRET_NAMES)
    env = {**CHANNELS}
    for name, value in SECRETS.items():
        path = tmp_path / name.lower()
        path.write_text(value + "\n")  # as `echo` and most secret stores write them
        env[f"{name}_FILE"] = str(path)
    resolved = read_secrets(env)
    assert {name: resolved[name] for name in SECRETS} == SECRETS
    assert not any(key.endswith("_FILE") for key in resolved if key[:-5] in SECRETS)
    assert read_secrets(resolved) == resolved  # idempotent

    bridge = BridgeConfig.from_env(env)
    assert bridge.webhook_token == SECRETS["BRIDGE_WEBHOOK_TOKEN"]
    assert bridge.database_url == SECRETS["DATABASE_URL"]
    channels = bridge.channels
    assert channels.slack.webhook_url == SECRETS["SLACK_WEBHOOK_URL"]
    assert channels.slack.bot_token == SECRETS["SLACK_BOT_TOKEN"]
    assert channels.slack_signing_secret == SECRETS["SLACK_SIGNING_SECRET"]
    assert channels.email.password == SECRETS["SMTP_PASSWORD"]
    assert channels.sms.auth_token == SECRETS["TWILIO_AUTH_TOKEN"]
    assert channels.pagerduty.integration_key == PD_KEY
    assert bridge.pagerduty_webhook_secret == SECRETS["PAGERDUTY_WEBHOOK_SECRET"]
    assert channels.apprise.urls["low"] == (SECRETS["APPRISE_URLS_LOW"],)
    assert channels.webpush.keys.private_key == SECRETS["WEBPUSH_VAPID_PRIVATE_KEY"]
    exporter = ExporterConfig.from_env(env)
    assert exporter.ingest_token == SECRETS["EXPORTER_INGEST_TOKEN"]
    assert exporter.stripe_webhook_secret == SECRETS["STRIPE_WEBHOOK_SECRET"]
    assert exporter.probe_database_url == SECRETS["PROBE_DATABASE_URL"]


def test_a_secret_file_that_cannot_be_read_names_the_variable(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=f"BRIDGE_WEBHOOK_TOKEN_FILE: cannot read {missing}"):
        BridgeConfig.from_env({"BRIDGE_WEBHOOK_TOKEN_FILE": str(missing)})
    both = tmp_path / "token"
    both.write_text(SECRETS["BRIDGE_WEBHOOK_TOKEN"])
    with pytest.raises(ConfigError, match="BRIDGE_WEBHOOK_TOKEN or BRIDGE_WEBHOOK_TOKEN_FILE"):
        read_secrets({"BRIDGE_WEBHOOK_TOKEN": "x" * 20, "BRIDGE_WEBHOOK_TOKEN_FILE": str(both)})


@pytest.mark.parametrize("name", TOKEN_NAMES)
def test_short_tokens_are_refused(name):
    short = "s3cret-short"
    assert len(short) < MIN_TOKEN_LENGTH
    with pytest.raises(ConfigError, match=f"{name} is {len(short)} characters long") as caught:
        read_secrets({name: short})
    assert short not in str(caught.value)
    config_class = BridgeConfig if name == "BRIDGE_WEBHOOK_TOKEN" else ExporterConfig
    with pytest.raises(ConfigError):
        config_class.from_env({name: short})
    read_secrets({name: "x" * MIN_TOKEN_LENGTH})


async def test_the_bridge_refuses_to_start_with_a_short_token(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "passiton_monitoring",
        "bridge",
        env={"BRIDGE_WEBHOOK_TOKEN": "passiton-dev", "PASSITON_STATE_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "BRIDGE_WEBHOOK_TOKEN is 12 characters long; use at least 16" in err.decode()
    assert "passiton-dev" not in (out + err).decode()


async def test_reprs_show_no_secret():
    env = {**CHANNELS, **SECRETS}
    config = BridgeConfig.from_env(env)
    shown = repr(config) + repr(ExporterConfig.from_env(env))
    async with async_client() as http:
        storage = open_storage(config.database_url)  # not opened: only shown
        notifiers = build_notifiers(
            config.channels,
            http,
            oncall=True,
            slack_threads=SlackMessages(storage),
            push_store=PushSubscriptions(storage),
        )
        assert sorted(notifiers) == [
            "apprise",
            "email",
            "pagerduty",
            "slack",
            "sms",
            "voice",
            "webpush",
        ]
        shown += repr(notifiers)
    for secret in NEVER_SHOWN:
        assert secret not in shown


async def test_doctor_shows_no_secret(tmp_path):
    env = {**CHANNELS, **SECRETS, "PASSITON_STATE_DIR": str(tmp_path)}
    env["PROMETHEUS_URL"] = env["ALERTMANAGER_URL"] = "http://127.0.0.1:1"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "passiton_monitoring",
        "doctor",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    text = (out + err).decode()
    assert process.returncode == 1, text
    assert "[FAIL] database: postgresql:" in text
    for secret in NEVER_SHOWN:
        assert secret not in text


async def test_ready_does_not_echo_the_database_error(pg_database, aiohttp_client):
    name = pg_database.rsplit("/", 1)[1]
    app = create_app(make_config(pg_database), notifiers=notifiers("slack"), workers=False)
    client = await aiohttp_client(app)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        response = await client.get("/-/ready")
        assert response.status == 503
        assert await response.text() == "database unavailable\n"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert (await client.get("/-/ready")).status == 200
