"""Alert work on the bridge's clock (issue 21): an acknowledgement that ends after a chosen time,
unacknowledging, snoozing, assigning and notes, through the one ``IncidentActions`` path, with
the sweep run by the escalator of two replicas at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bridge.oncall.actions import ActionRefused
from bridge.oncall.escalator import Escalator
from bridge.oncall.timers import IncidentTimers
from tests.bridge.support import T0, am_alert
from tests.oncall.bridge_support import ALICE_PHONE, BOB_PHONE, oncall_bridge, post_alerts
from tests.oncall.test_escalation_engine import CRITICAL, deliver, incident_status, sms_to

CRITICAL_AT = T0  # the alert's startsAt


def replica(client) -> Escalator:
    """A second bridge replica's escalator (with its own sweep) on the same database."""
    bridge = client.bridge
    timers = IncidentTimers(bridge.storage, bridge.metrics, client.clock)
    return Escalator(
        bridge.storage,
        bridge.oncall,
        bridge.notifiers,
        bridge.metrics,
        client.clock,
        timers=timers,
    )


async def events(bridge, *kinds: str) -> list[tuple[str, dict]]:
    found = await bridge.storage.console().incident_events(1)
    return [(e.kind, e.detail) for e in found if e.kind in kinds]


async def test_an_acknowledgement_for_an_hour_fires_and_escalates_again_once_across_replicas(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    other = replica(client)
    await post_alerts(client, CRITICAL)
    # the severity table's list of people is replaced by the escalation: said per channel (no
    # ALERT_SMS_RECIPIENTS here: the severity table's SMS is not configured at all)
    skips = await bridge.storage.console().skips("c0ffee01", CRITICAL_AT)
    assert {(k.channel, k.reason) for k in skips} == {
        ("email", "oncall"),
        ("sms", "not_configured"),
    }
    assert await bridge.escalator.run_once() == 1  # step 1: Alice
    result = await bridge.actions.act(
        1, "acknowledge", person_id="alice", via="console", ack_for=timedelta(hours=1)
    )
    assert result.changed
    assert result.status == "acknowledged"
    assert result.detail["until"] == (clock.now + timedelta(hours=1)).isoformat()

    # the policy's ack_timeout (30 minutes) no longer applies: the chosen hour does
    clock.advance(30 * 60)
    assert await asyncio.gather(bridge.escalator.run_once(), other.run_once()) == [0, 0]
    assert await incident_status(bridge) == "acknowledged"
    clock.advance(30 * 60 - 1)
    assert await asyncio.gather(bridge.escalator.run_once(), other.run_once()) == [0, 0]
    clock.advance(1)
    handled = await asyncio.gather(*(e.run_once() for e in (bridge.escalator, other) * 2))
    assert sum(handled) == 2  # the expiry once, then step 1 once
    assert await incident_status(bridge) == "firing"
    expired = await events(bridge, "acknowledgement_expired")
    assert len(expired) == 1
    assert expired[0][1]["chosen"] is True
    steps = await events(bridge, "escalation_step")
    assert [d["step"] for _, d in steps] == [1, 1]  # the walk started again at step 1
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, ALICE_PHONE)) == 2
    assert await sms_to(fake_twilio, BOB_PHONE) == []
    # and goes on: step 2 a minute later
    clock.advance(60)
    assert sum(await asyncio.gather(bridge.escalator.run_once(), other.run_once())) == 1
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, BOB_PHONE)) == 1


async def test_an_acknowledgement_until_resolved_ignores_the_policy_timeout(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    await post_alerts(client, CRITICAL)
    await bridge.escalator.run_once()
    result = await bridge.actions.act(
        1, "acknowledge", person_id="alice", via="api", ack_for="resolved"
    )
    assert result.detail["until"] == "resolved"
    clock.advance(24 * 3600)
    assert await bridge.escalator.run_once() == 0
    assert await incident_status(bridge) == "acknowledged"
    with pytest.raises(ActionRefused):
        await bridge.actions.act(
            1, "acknowledge", person_id="alice", via="api", ack_for=timedelta(days=8)
        )


async def test_unacknowledging_fires_again_and_restarts_the_walk_from_step_one(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    await post_alerts(client, CRITICAL)
    await bridge.escalator.run_once()
    clock.advance(60)
    await bridge.escalator.run_once()  # step 2: Bob
    await bridge.actions.act(1, "acknowledge", person_id="bob", via="sms")
    await deliver(bridge)
    pagerduty = client.chans["pagerduty"].messages
    sent_to_pagerduty = len(pagerduty)
    clock.advance(5)

    result = await bridge.actions.act(1, "unacknowledge", person_id="carol", via="console")
    assert result.changed
    assert result.status == "firing"
    again = await bridge.actions.act(1, "unacknowledge", person_id="carol", via="console")
    assert not again.changed  # a second press: nothing
    [(_, unacked)] = await events(bridge, "unacknowledged")
    assert unacked["by"] == "carol"
    assert "PagerDuty" in unacked["pagerduty"]  # it has no un-acknowledge: said, not sent
    assert unacked["escalation"] == "from step 1"
    await deliver(bridge)
    assert len(pagerduty) == sent_to_pagerduty
    [row] = await bridge.storage.query("SELECT acknowledged_at FROM incidents")
    assert row["acknowledged_at"] is None

    assert await bridge.escalator.run_once() == 1  # step 1 again, at once
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, ALICE_PHONE)) == 2
    clock.advance(60)
    assert await bridge.escalator.run_once() == 1
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, BOB_PHONE)) == 2


async def test_a_snooze_holds_the_steps_and_the_pages_until_it_ends(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    other = replica(client)
    await post_alerts(client, CRITICAL)
    await bridge.escalator.run_once()  # step 1
    result = await bridge.actions.act(
        1, "snooze", person_id="alice", via="console", snooze_for=timedelta(minutes=30)
    )
    assert result.changed
    assert result.status == "firing"
    again = await bridge.actions.act(
        1, "snooze", person_id="alice", via="console", snooze_for=timedelta(minutes=30)
    )
    assert not again.changed

    clock.advance(60)  # step 2 is due: held by the snooze
    assert await bridge.escalator.run_once() == 1
    # an alert joining the snoozed incident pages nobody
    await deliver(bridge)
    slack = client.chans["slack"].messages
    before = len(slack)
    await post_alerts(
        client,
        am_alert("PaymentProcessingFailures", severity="critical", fingerprint="c0ffee02",
                 organization_id="org-2"),
    )  # fmt: skip
    await deliver(bridge)
    assert len(slack) == before
    assert await sms_to(fake_twilio, BOB_PHONE) == []
    skips = await bridge.storage.query(
        "SELECT reason FROM alert_skips WHERE fingerprint = 'c0ffee02'"
    )
    assert {r["reason"] for r in skips} >= {"snoozed"}

    clock.advance(29 * 60)  # the snooze ends: once, and the held step goes
    handled = await asyncio.gather(*(e.run_once() for e in (bridge.escalator, other) * 2))
    assert sum(handled) == 2
    ended = await events(bridge, "snooze_ended")
    assert len(ended) == 1
    assert ended[0][1]["by"] == "alice"
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, BOB_PHONE)) == 1


async def test_unsnoozing_sends_the_held_step_now(db_url, aiohttp_client, fake_twilio, tmp_path):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    await post_alerts(client, CRITICAL)
    await bridge.escalator.run_once()
    await bridge.actions.act(
        1, "snooze", person_id="alice", via="console", snooze_for=timedelta(hours=4)
    )
    clock.advance(120)
    await bridge.escalator.run_once()  # step 2 held till the snooze's end
    result = await bridge.actions.act(1, "unsnooze", person_id="alice", via="console")
    assert result.changed
    assert not (await bridge.actions.act(1, "unsnooze", person_id="alice", via="console")).changed
    assert await bridge.escalator.run_once() == 1
    await deliver(bridge)
    assert len(await sms_to(fake_twilio, BOB_PHONE)) == 1


async def test_assigning_and_notes_are_on_the_timeline_once(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge = client.bridge
    await post_alerts(client, CRITICAL)
    act = bridge.actions.act
    assert (await act(1, "assign", person_id="alice", via="console", assignee="bob")).changed
    assert not (await act(1, "assign", person_id="alice", via="console", assignee="bob")).changed
    assert (await act(1, "assign", person_id="bob", via="api", assignee="")).changed
    assert (await act(1, "note", person_id="bob", via="console", text="<b>DB</b> full")).changed
    assert not (await act(1, "note", person_id="bob", via="console", text="<b>DB</b> full")).changed
    for bad in ("", "   ", "x" * 2001, "a\x00b"):
        with pytest.raises(ActionRefused):
            await act(1, "note", person_id="bob", via="console", text=bad)
    found = await events(bridge, "assigned", "unassigned", "note")
    assert [(k, d.get("to", d.get("text"))) for k, d in found] == [
        ("assigned", "bob"),
        ("unassigned", ""),
        ("note", "<b>DB</b> full"),
    ]
    [row] = await bridge.storage.query("SELECT assignee FROM incidents")
    assert row["assignee"] is None
