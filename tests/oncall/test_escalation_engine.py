"""The escalation engine against a real PostgreSQL, the fake Twilio and a clock the test drives:
who is paged, when the next step goes, acknowledgements from the phone, several replicas, a
restart between two steps."""

from __future__ import annotations

import asyncio

from bridge.app import Bridge
from bridge.oncall.escalator import Escalator
from console.incidents import _event_line
from tests.bridge.support import am_alert
from tests.oncall.bridge_support import (
    ALICE_PHONE,
    BOB_PHONE,
    PUBLIC_URL,
    oncall_bridge,
    post_alerts,
    public_post,
    twilio_form,
)

CRITICAL = am_alert("PaymentProcessingFailures", severity="critical", fingerprint="c0ffee01")


async def incident_status(bridge: Bridge) -> str:
    [row] = await bridge.storage.incidents()
    return row.status


async def sms_to(fake_twilio, number: str) -> list[str]:
    return [m["Body"] for m in fake_twilio.messages if m["To"] == number]


async def deliver(bridge: Bridge) -> None:
    while await bridge.delivery.run_once():
        pass


async def reply(bridge: Bridge, body: str, sender: str, sid: str, *, token: str | None = None):
    url = f"http://127.0.0.1:{bridge.public_port}/v1/twilio/sms"
    form = {"From": sender, "To": "+15005550000", "Body": body, "MessageSid": sid}
    headers = (
        twilio_form(PUBLIC_URL + "/v1/twilio/sms", form)
        if token is None
        else twilio_form(PUBLIC_URL + "/v1/twilio/sms", form, token)
    )
    return await public_post(url, form, headers)


async def test_the_person_on_call_is_paged_then_the_next_step_until_an_sms_ack(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    await post_alerts(client, CRITICAL)

    assert await bridge.escalator.run_once() == 1
    await deliver(bridge)
    # step 1: the person on call this week, by SMS and Slack at once; not the other person
    [text] = await sms_to(fake_twilio, ALICE_PHONE)
    assert "Reply 1a to acknowledge, 1c to resolve." in text
    assert await sms_to(fake_twilio, BOB_PHONE) == []
    assert client.chans["slack"].messages[-1].mentions == ("U0ALICE",)
    # the severity table's SMS list is replaced by the policy (none configured here anyway),
    # the team channels still get the incident's page
    assert len(client.chans["pagerduty"].messages) == 1

    clock.advance(59)
    assert await bridge.escalator.run_once() == 0  # step 2 is due after a minute
    clock.advance(1)
    assert await bridge.escalator.run_once() == 1
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, BOB_PHONE)) == 1

    # a reply with the wrong signature is refused and changes nothing
    status, _ = await reply(bridge, "ack", ALICE_PHONE, "SM1", token="not-the-auth-token")
    assert status == 401
    assert await incident_status(bridge) == "firing"

    status, text = await reply(bridge, "ack", ALICE_PHONE, "SM2")
    assert status == 200
    assert "Incident #1 acknowledged" in text
    assert await incident_status(bridge) == "acknowledged"
    # the same signed request again is a replay: refused, nothing changes
    status, _ = await reply(bridge, "ack", ALICE_PHONE, "SM2")
    assert status == 409

    sent = len(fake_twilio.messages)
    clock.advance(120)  # the repeat would have been due: the acknowledgement stopped it
    assert await bridge.escalator.run_once() == 0
    await deliver(bridge)
    assert len(fake_twilio.messages) == sent
    kinds = await bridge.storage.query(
        "SELECT kind, detail->>'via' AS via FROM incident_events WHERE kind IN"
        " ('escalation_step', 'acknowledged') ORDER BY id"
    )
    assert [(k["kind"], k["via"]) for k in kinds] == [
        ("escalation_step", None),
        ("escalation_step", None),
        ("acknowledged", "sms"),
    ]
    # PagerDuty mirrors the acknowledgement
    assert client.chans["pagerduty"].messages[-1].action == "acknowledge"


async def test_an_acknowledgement_that_is_not_resolved_in_time_escalates_again(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    await post_alerts(client, CRITICAL)
    await bridge.escalator.run_once()
    result = await bridge.actions.act(1, "acknowledge", person_id="alice", via="console")
    assert result.changed
    assert result.status == "acknowledged"
    again = await bridge.actions.act(1, "acknowledge", person_id="alice", via="console")
    assert not again.changed  # a second press writes nothing

    clock.advance(30 * 60 - 1)
    assert await bridge.escalator.run_once() == 0
    clock.advance(1)
    assert await bridge.escalator.run_once() == 1  # ack_timeout: step 1 again
    assert await incident_status(bridge) == "firing"
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, ALICE_PHONE)) == 2

    await bridge.actions.act(1, "resolve", person_id="alice", via="console")
    clock.advance(3600)
    assert await bridge.escalator.run_once() == 0
    assert await incident_status(bridge) == "resolved"
    await deliver(bridge)
    assert client.chans["pagerduty"].messages[-1].action == "resolve"


async def test_two_replicas_send_each_step_once(db_url, aiohttp_client, fake_twilio, tmp_path):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge = client.bridge
    await post_alerts(client, CRITICAL)
    other = Escalator(bridge.storage, bridge.oncall, bridge.notifiers, bridge.metrics, client.clock)
    handled = await asyncio.gather(bridge.escalator.run_once(), other.run_once())
    assert sorted(handled) == [0, 1]
    client.clock.advance(60)
    handled = await asyncio.gather(*(e.run_once() for e in (bridge.escalator, other) * 3))
    assert sum(handled) == 1
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, ALICE_PHONE)) == 1
    assert len(await sms_to(fake_twilio, BOB_PHONE)) == 1


async def test_a_restart_between_two_steps_sends_the_second_once(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    await post_alerts(client, CRITICAL)
    assert await client.bridge.escalator.run_once() == 1
    await client.close()  # the replica stops between the two steps

    clock = client.clock
    clock.advance(90)
    restarted = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path, clock=clock)
    assert await restarted.bridge.escalator.run_once() == 1
    assert await restarted.bridge.escalator.run_once() == 0
    await deliver(restarted.bridge)
    assert len(await sms_to(fake_twilio, ALICE_PHONE)) == 1  # step 1 was not sent again
    assert len(await sms_to(fake_twilio, BOB_PHONE)) == 1


async def test_a_call_reads_the_incident_and_a_key_press_acknowledges(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge = client.bridge
    widget = am_alert(
        "WidgetPlatformOutage <b>&", severity="critical", category="widget", fingerprint="w1"
    )
    await post_alerts(client, widget)
    await bridge.escalator.run_once()
    await deliver(bridge)
    [call] = fake_twilio.calls
    assert call["To"] == ALICE_PHONE
    twiml = call["Twiml"]
    assert "&lt;b&gt;&amp;" in twiml
    assert "<b>" not in twiml
    action = f"{PUBLIC_URL}/v1/twilio/voice?incident=1"
    assert f'action="{action}"' in twiml
    assert client.chans["email"].messages[-1].recipients == ("alice@example.org",)
    assert f"{PUBLIC_URL}/v1/ack/" in client.chans["email"].messages[-1].notice

    form = {"CallSid": "CA1", "Digits": "1", "To": ALICE_PHONE, "From": "+15005550000"}
    url = f"http://127.0.0.1:{bridge.public_port}/v1/twilio/voice?incident=1"
    status, text = await public_post(url, form, twilio_form(action, form))
    assert status == 200
    assert "acknowledged" in text
    assert await incident_status(bridge) == "acknowledged"


async def test_the_console_shows_who_each_step_paged(db_url, aiohttp_client, fake_twilio, tmp_path):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    await post_alerts(client, CRITICAL)
    await client.bridge.escalator.run_once()
    events = await client.bridge.storage.console().incident_events(1)
    [step] = [e for e in events if e.kind == "escalation_step"]
    _, what, text, missed = _event_line(step)
    assert what == "escalated"
    assert text == "step 1 of 2, policy default: alice by sms, alice by slack"
    assert missed == ""
