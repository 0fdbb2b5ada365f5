"""Escalations when incidents merge (issue 19): the absorbed incident's walk stops, the
survivor's carries on, and a person paged for either reaches the survivor; a survivor without a
walk of its own takes over the absorbed one where it stood."""

from __future__ import annotations

from datetime import timedelta

from bridge.merging import inherit_walks
from bridge.oncall.escalation import NewEscalation, Walk
from tests.bridge.support import T0, am_alert
from tests.oncall.test_escalation_engine import (  # its on-call bridge, wherever it lives
    ALICE_PHONE,
    BOB_PHONE,
    deliver,
    oncall_bridge,
    post_alerts,
    reply,
    sms_to,
)

API = am_alert(
    "ApiErrorRatioHigh",
    fingerprint="api",
    severity="critical",
    category="dashboard",
    organization_id=None,
)
PAY = am_alert(
    "PaymentFailureRatioHigh", fingerprint="pay", severity="critical", organization_id="org-3"
)
DB = am_alert("DatabaseErrorsHigh", fingerprint="db", category="system", organization_id=None)


async def test_the_absorbed_incident_stops_escalating_and_the_survivor_goes_on(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    await post_alerts(client, API)
    assert await bridge.escalator.run_once() == 1  # #1: step 1, Alice
    clock.advance(10)
    await post_alerts(client, PAY)
    assert await bridge.escalator.run_once() == 1  # #2: step 1, Alice again
    await deliver(bridge)
    assert ["Reply 1a" in t for t in await sms_to(fake_twilio, ALICE_PHONE)] == [True, False]
    clock.advance(10)
    await post_alerts(client, DB)  # the database: #2 merges into #1
    first, second = await bridge.storage.incidents()
    assert (second.status, second.merged_into) == ("resolved", first.id)
    walks = await bridge.storage.query("SELECT incident_id, state FROM escalations ORDER BY 1")
    assert [(w["incident_id"], w["state"]) for w in walks] == [
        (first.id, "active"),
        (second.id, "done"),
    ]

    clock.advance(3600)  # every step and repeat of #1 is due by now; nothing of #2 ever is
    while await bridge.escalator.run_once():
        clock.advance(60)
    await deliver(bridge)
    steps = await bridge.storage.query(
        "SELECT incident_id, count(*) AS n FROM incident_events"
        " WHERE kind = 'escalation_step' GROUP BY 1 ORDER BY 1"
    )
    # #1: step 1, step 2, then both again (repeat 1); #2: only its step 1, before the merge
    assert [(s["incident_id"], s["n"]) for s in steps] == [(first.id, 4), (second.id, 1)]
    assert len(await sms_to(fake_twilio, BOB_PHONE)) == 2  # #1's step 2, and its repeat
    # Alice answers the page of #2: the acknowledgement goes to the incident it went into
    status, text = await reply(bridge, f"{second.id}a", ALICE_PHONE, "SM-merge")
    assert status == 200
    assert f"Incident #{first.id} acknowledged" in text
    first, second = await bridge.storage.incidents()
    assert (first.status, second.status) == ("acknowledged", "resolved")


def test_a_survivor_without_a_walk_carries_on_the_absorbed_one():
    fresh = Walk("active", 0, 0, T0)
    started = [
        NewEscalation(1, "default", fresh, b"{}", {}),
        NewEscalation(3, "default", fresh, b"{}", {}),
    ]
    at_step_2 = Walk("active", 1, 0, T0 + timedelta(minutes=1))
    inherited = {1: ("default", at_step_2), 3: ("by-phone", at_step_2)}  # another policy: not
    assert [e.walk for e in inherit_walks(started, inherited)] == [at_step_2, fresh]
