"""Issue 20's acceptance, through the production wiring (channels built from the configuration):
two people on a weekly rotation, "the person on call by SMS and Slack at once, then the other by
SMS after a minute"; the fake Twilio and the fake Slack (Web API) speak their protocols, the
bridge's workers run for real, the test moves the clock."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import aiohttp

from bridge.app import BRIDGE, create_app
from bridge.channels.config import ChannelsConfig, EmailSettings, SlackSettings, SmsSettings
from bridge.doctor import oncall_checks
from bridge.public.slack import slack_signature
from tests.bridge.support import BridgeClient, Clock, am_alert, make_config, wait_until
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID
from tests.fakes.twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.oncall.bridge_support import (
    ALICE_PHONE,
    BOB_PHONE,
    PUBLIC_URL,
    TWILIO_FROM,
    post_alerts,
    public_post,
    twilio_form,
    write_oncall,
)

SIGNING_SECRET = "slack-signing-secret-of-the-test"


async def test_a_critical_incident_walks_the_policy_and_is_answered_from_the_phone(
    db_url, aiohttp_client, fake_twilio, fake_slack, tmp_path
):
    clock = Clock()
    channels = ChannelsConfig(
        slack=SlackSettings(bot_token=BOT_TOKEN, channel=CHANNEL_ID, api_url=fake_slack.api_url),
        slack_signing_secret=SIGNING_SECRET,
        sms=SmsSettings(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TWILIO_FROM, (), fake_twilio.base_url),
    )
    config = make_config(
        db_url, public_listen=("127.0.0.1", 0), public_url=PUBLIC_URL, channels=channels
    )
    app = create_app(config, clock=clock, oncall=write_oncall(tmp_path))
    client = BridgeClient(await aiohttp_client(app), app[BRIDGE], {}, clock)
    bridge = client.bridge
    public = f"http://127.0.0.1:{bridge.public_port}"

    def texts(number: str) -> list[str]:
        return [m["Body"] for m in fake_twilio.messages if m["To"] == number]

    started = time.monotonic()
    await post_alerts(
        client, am_alert("PaymentProcessingFailures", severity="critical", fingerprint="c1")
    )
    await wait_until(lambda: texts(ALICE_PHONE), timeout=15)
    assert time.monotonic() - started < 15
    assert texts(BOB_PHONE) == []  # the other person is not paged by step 1
    # Slack: the incident's one message (with its buttons), Alice mentioned in its thread
    await wait_until(
        lambda: any("<@U0ALICE>" in json.dumps(r.payload) for r in fake_slack.posts if r.thread_ts)
    )
    [parent] = fake_slack.parents()

    clock.advance(60)
    bridge.escalator.wake()
    await wait_until(lambda: texts(BOB_PHONE), timeout=15)

    form = {"From": ALICE_PHONE, "To": TWILIO_FROM, "Body": "ack", "MessageSid": "SMack1"}
    forged = twilio_form(PUBLIC_URL + "/v1/twilio/sms", form, token="a-guessed-token")
    status, _ = await public_post(f"{public}/v1/twilio/sms", form, forged)
    assert status == 401
    assert (await bridge.storage.incidents())[0].status == "firing"

    signed = twilio_form(PUBLIC_URL + "/v1/twilio/sms", form)
    status, answer = await public_post(f"{public}/v1/twilio/sms", form, signed)
    assert status == 200
    assert "acknowledged" in answer
    assert (await bridge.storage.incidents())[0].status == "acknowledged"

    sent = len(fake_twilio.messages)
    clock.advance(10 * 60)  # the repeat would be due by now
    bridge.escalator.wake()
    await bridge.escalator.run_once()
    await bridge.delivery.run_once()
    assert len(fake_twilio.messages) == sent

    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice"},
        "actions": [{"action_id": "incident_resolve", "value": "1", "type": "button"}],
        "container": {"type": "message", "channel_id": parent.channel, "message_ts": parent.ts},
        "response_url": "https://hooks.slack.com/actions/T1/2/x",
    }
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(clock().timestamp()))
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(SIGNING_SECRET, ts, body.encode()),
    }
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{public}/v1/slack/interactions", data=body.encode(), headers=headers
        ) as response,
    ):
        assert response.status == 200, await response.text()
    assert (await bridge.storage.incidents())[0].status == "resolved"
    await wait_until(lambda: parent.edits)  # the message updated in place
    assert len(fake_twilio.messages) == sent


async def test_doctor_says_what_answering_a_page_needs(tmp_path):
    config = make_config("", oncall=write_oncall(tmp_path))
    checks = {c.name: c for c in oncall_checks(config)}
    assert checks["on-call"].detail == "2 people, 1 schedules, 2 policies, 2 routes"
    assert checks["public listener"].warning
    assert "BRIDGE_PUBLIC_URL" in checks["public listener"].fix
    assert not checks["on-call channels"].ok  # SMS, voice, e-mail, Slack: none configured
    assert "email, slack, sms, voice" in checks["on-call channels"].detail
    ready = make_config(
        "",
        oncall=write_oncall(tmp_path),
        public_listen=("0.0.0.0", 9823),
        public_url=PUBLIC_URL,
        channels=ChannelsConfig(
            slack=SlackSettings(bot_token=BOT_TOKEN, channel=CHANNEL_ID),
            sms=SmsSettings(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TWILIO_FROM),
            email=EmailSettings("smtp.example.test", ()),
        ),
    )
    checks = {c.name: c for c in oncall_checks(ready)}
    assert checks["public listener"].ok
    assert not checks["public listener"].warning
    assert "on-call channels" not in checks
