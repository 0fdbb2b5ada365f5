"""An on-call bridge for the escalation tests: two people on a weekly rotation, real SMS and
voice channels against the fake Twilio, recording channels for the rest, a test-driven clock."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from bridge.app import BRIDGE, create_app
from bridge.channels.config import ChannelsConfig, SmsSettings
from bridge.channels.registry import aclose_notifiers
from bridge.channels.sms import SmsNotifier
from bridge.channels.voice import VoiceNotifier
from bridge.oncall.config import OncallConfig, load_oncall
from tests.bridge.support import AUTH, BridgeClient, Clock, RecordingNotifier, make_config, payload
from tests.fakes.twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, twilio_signature

ALICE_PHONE = "+15005550011"
BOB_PHONE = "+15005550012"
TWILIO_FROM = "+15005550000"
PUBLIC_URL = "https://oncall.example.test"
# 2026-03-01 is a Sunday: the rotation that began Monday 2026-02-23 09:00 Berlin is Alice's week.
ONCALL_YAML = """\
people:
  - id: alice
    name: Alice Example
    time_zone: Europe/Berlin
    contacts: {sms: "+15005550011", voice: "+15005550011", email: alice@example.org,
               slack: U0ALICE, pagerduty: PALICE1}
  - id: bob
    name: Bob Example
    time_zone: America/New_York
    contacts: {sms: "+15005550012", voice: "+15005550012", email: bob@example.org, slack: U0BOB}
schedules:
  - id: primary
    time_zone: Europe/Berlin
    rotation: {type: weekly, handoff: "monday 09:00", start: "2026-02-23", people: [alice, bob]}
escalation_policies:
  - id: default
    repeat: 1
    ack_timeout: 30m
    steps:
      - {notify: ["schedule:primary"], via: [sms, slack]}
      - {after: 1m, notify: ["person:bob"], via: [sms]}
  - id: by-phone
    steps:
      - {notify: ["schedule:primary"], via: [voice, email]}
routes:
  - {matchers: ['severity="critical"', 'category="widget"'], policy: by-phone}
  - {matchers: ['severity="critical"'], policy: default}
"""


def write_oncall(tmp_path: Path, text: str = ONCALL_YAML) -> OncallConfig:
    path = tmp_path / "oncall.yml"
    path.write_text(text)
    return load_oncall(path)


async def oncall_bridge(
    db_url: str,
    aiohttp_client: Any,
    fake_twilio: Any,
    tmp_path: Path,
    *,
    clock: Clock | None = None,
    workers: bool = False,
    extra: dict[str, Any] | None = None,
    slack_signing_secret: str | None = None,
    **config: Any,
) -> BridgeClient:
    """A bridge with ONCALL_CONFIG and its public listener (on a free port); with
    ``slack_signing_secret``, Slack's button presses too."""
    clock = clock or Clock()
    oncall = write_oncall(tmp_path)
    sms_settings = SmsSettings(
        TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TWILIO_FROM, (), fake_twilio.base_url
    )
    settings = make_config(
        db_url,
        public_listen=("127.0.0.1", 0),
        public_url=PUBLIC_URL,
        channels=replace(
            ChannelsConfig(), sms=sms_settings, slack_signing_secret=slack_signing_secret
        ),
        **config,
    )
    chans: dict[str, Any] = {
        "sms": SmsNotifier(
            TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TWILIO_FROM, (), api_url=fake_twilio.base_url
        ),
        "voice": VoiceNotifier(
            TEST_ACCOUNT_SID,
            TEST_AUTH_TOKEN,
            TWILIO_FROM,
            public_url=PUBLIC_URL,
            api_url=fake_twilio.base_url,
        ),
        "slack": RecordingNotifier("slack"),
        "email": RecordingNotifier("email"),
        "pagerduty": RecordingNotifier("pagerduty"),
        **(extra or {}),
    }
    app = create_app(settings, notifiers=chans, clock=clock, workers=workers, oncall=oncall)

    async def close_channels(_: Any) -> None:
        await aclose_notifiers(chans)

    app.on_cleanup.append(close_channels)
    client = await aiohttp_client(app)
    return BridgeClient(client, app[BRIDGE], chans, clock)


async def post_alerts(client: BridgeClient, *alerts: dict[str, Any]) -> None:
    response = await client.post("/v1/alertmanager", json=payload(*alerts), headers=AUTH)
    assert response.status == 200, await response.text()


def twilio_form(url: str, params: dict[str, str], token: str = TEST_AUTH_TOKEN) -> dict[str, str]:
    """The headers Twilio sends with a webhook to ``url``."""
    return {"X-Twilio-Signature": twilio_signature(token, url, params)}


async def public_post(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    """POST a form to the public listener over real HTTP; its status and body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=form, headers=headers) as response,
    ):
        return response.status, await response.text()
