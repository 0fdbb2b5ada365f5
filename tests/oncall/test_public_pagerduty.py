"""PagerDuty's V3 webhooks on the public listener, over real HTTP against a real PostgreSQL: an
acknowledgement or resolve made in PagerDuty acts here (as the on-call file's person), is not
mirrored back, and forged, rotated, replayed, stale, foreign and oversized deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.channels.pagerduty import incident_dedup_key
from bridge.oncall.config import OncallConfigError, load_oncall
from bridge.public.pagerduty import person_of, signature, verify
from tests.bridge.support import BridgeClient, am_alert
from tests.oncall.bridge_support import oncall_bridge, post_alerts
from tests.oncall.support import write

SECRET = "pd-webhook-secret-0123456789abcdef"
OLD_SECRET = "pd-webhook-secret-retired-000000"
CRITICAL = am_alert("PaymentProcessingFailures", severity="critical", fingerprint="c0ffee01")

# The test vector of PagerDuty's Go client (go-pagerduty, webhookv3/webhookv3_test.go): a body,
# the subscription's secret and the signature PagerDuty computed for them.
GO_PAGERDUTY_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
GO_PAGERDUTY_SIGNATURE = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
GO_PAGERDUTY_BODY = (
    '{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated",'
    '"resource_type":"incident","occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":'
    '"https://acme.pagerduty.com/users/PLH1HKV","id":"PLH1HKV","self":'
    '"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer","type":'
    '"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident","self":'
    '"https://api.pagerduty.com/incidents/PGR0VU2","html_url":'
    '"https://acme.pagerduty.com/incidents/PGR0VU2","number":2,"status":"triggered","title":'
    '"A little bump in the road","service":{"html_url":'
    '"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH","self":'
    '"https://api.pagerduty.com/services/PF9KMXH","summary":"API Service","type":'
    '"service_reference"},"assignees":[{"html_url":"https://acme.pagerduty.com/users/PTUXL6G",'
    '"id":"PTUXL6G","self":"https://api.pagerduty.com/users/PTUXL6G","summary":"User 123",'
    '"type":"user_reference"}],"escalation_policy":{"html_url":'
    '"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE","self":'
    '"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default","type":'
    '"escalation_policy_reference"},"teams":[{"html_url":'
    '"https://acme.pagerduty.com/teams/PFCVPS0","id":"PFCVPS0","self":'
    '"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":"team_reference"}],'
    '"priority":{"html_url":"https://acme.pagerduty.com/account/incident_priorities","id":'
    '"PSO75BM","self":"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":'
    '"priority_reference"},"urgency":"high","conference_bridge":{"conference_number":1000,'
    '"conference_url":"https://example.com"},"resolve_reason":null}}}'
)


def pd_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event(
    event_type: str,
    incident_id: int,
    occurred_at: datetime,
    *,
    event_id: str = "01EVENT0000000000000000001",
    agent: str | None = "PALICE1",
    key: str | None = None,
) -> bytes:
    """A V3 webhook body as PagerDuty sends it (fields of its documented incident example)."""
    body: dict[str, Any] = {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": pd_time(occurred_at),
            "agent": (
                {
                    "html_url": f"https://acme.pagerduty.com/users/{agent}",
                    "id": agent,
                    "self": f"https://api.pagerduty.com/users/{agent}",
                    "summary": "Someone",
                    "type": "user_reference",
                }
                if agent
                else None
            ),
            "client": {"name": "PagerDuty"},
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                "number": 2,
                "status": event_type.rpartition(".")[2],
                "incident_key": key if key is not None else incident_dedup_key(incident_id),
                "created_at": pd_time(occurred_at - timedelta(minutes=3)),
                "title": "Incident #1: PaymentProcessingFailures",
                "urgency": "high",
            },
        }
    }
    return json.dumps(body).encode()


async def deliver(client: BridgeClient, body: bytes, header: str | None) -> tuple[int, str]:
    """POST a webhook to the public listener over real HTTP."""
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-PagerDuty-Signature"] = header
    url = f"http://127.0.0.1:{client.bridge.public_port}/v1/pagerduty/webhook"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


async def signed(client: BridgeClient, body: bytes) -> tuple[int, str]:
    return await deliver(client, body, signature(SECRET, body))


async def status_of(bridge: Bridge) -> str:
    [row] = await bridge.storage.incidents()
    return row.status


async def timeline(bridge: Bridge) -> list[tuple[str, str, str]]:
    rows = await bridge.storage.query(
        "SELECT kind, detail->>'by' AS by, detail->>'via' AS via FROM incident_events"
        " WHERE kind IN ('acknowledged', 'resolved') ORDER BY id"
    )
    return [(r["kind"], r["by"], r["via"]) for r in rows]


async def send_outbox(bridge: Bridge) -> None:
    while await bridge.delivery.run_once():
        pass


async def paged_bridge(db_url, aiohttp_client, fake_twilio, tmp_path) -> BridgeClient:
    client = await oncall_bridge(
        db_url, aiohttp_client, fake_twilio, tmp_path, pagerduty_webhook_secret=SECRET
    )
    await post_alerts(client, CRITICAL)
    assert await client.bridge.escalator.run_once() == 1
    await send_outbox(client.bridge)
    return client


def test_the_signature_of_pagerdutys_own_example() -> None:
    body = GO_PAGERDUTY_BODY.encode()
    assert signature(GO_PAGERDUTY_SECRET, body) == GO_PAGERDUTY_SIGNATURE
    assert verify(GO_PAGERDUTY_SECRET, body, GO_PAGERDUTY_SIGNATURE)
    assert verify(GO_PAGERDUTY_SECRET, body, f"v1={'0' * 64},{GO_PAGERDUTY_SIGNATURE}")
    assert not verify(GO_PAGERDUTY_SECRET, body + b" ", GO_PAGERDUTY_SIGNATURE)
    assert not verify("another secret", body, GO_PAGERDUTY_SIGNATURE)
    assert not verify(GO_PAGERDUTY_SECRET, body, GO_PAGERDUTY_SIGNATURE.replace("v1=", "v2="))
    assert not verify(GO_PAGERDUTY_SECRET, body, "")


async def test_an_acknowledgement_in_pagerduty_acknowledges_here_and_is_not_sent_back(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await paged_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, clock = client.bridge, client.clock
    pages = len(client.chans["pagerduty"].messages)
    assert pages == 1  # the incident's page went to PagerDuty

    status, text = await signed(client, event("incident.acknowledged", 1, clock.now))
    assert (status, json.loads(text)) == (200, {"result": "incident #1 acknowledged"})
    assert await status_of(bridge) == "acknowledged"
    # who: the on-call file's person with that PagerDuty user; how: pagerduty
    assert await timeline(bridge) == [("acknowledged", "alice", "pagerduty")]
    # PagerDuty's own acknowledgement is not mirrored back to it
    await send_outbox(bridge)
    assert len(client.chans["pagerduty"].messages) == pages
    # the escalation stopped: the step due after a minute is not sent
    clock.advance(120)
    assert await bridge.escalator.run_once() == 0

    # PagerDuty delivers at least once: the same event again is answered 200, changes nothing
    status, text = await signed(client, event("incident.acknowledged", 1, clock.now))
    assert (status, json.loads(text)) == (200, {"result": "this event was handled already"})
    assert await timeline(bridge) == [("acknowledged", "alice", "pagerduty")]

    # resolved in PagerDuty by a user the on-call file does not know: acts as that user
    body = event("incident.resolved", 1, clock.now, event_id="01EVENT2", agent="PSTRNGR")
    status, text = await signed(client, body)
    assert (status, json.loads(text)) == (200, {"result": "incident #1 resolved"})
    assert await status_of(bridge) == "resolved"
    assert await timeline(bridge) == [
        ("acknowledged", "alice", "pagerduty"),
        ("resolved", "pagerduty:PSTRNGR", "pagerduty"),
    ]
    await send_outbox(bridge)
    assert len(client.chans["pagerduty"].messages) == pages
    outcomes = bridge.metrics.public_requests
    assert outcomes.labels(endpoint="pagerduty", outcome="accepted")._value.get() == 2
    assert outcomes.labels(endpoint="pagerduty", outcome="replay")._value.get() == 1


async def test_a_forged_or_unsigned_webhook_is_refused_and_changes_nothing(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await paged_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, now = client.bridge, client.clock.now
    body = event("incident.acknowledged", 1, now)
    assert (await deliver(client, body, None))[0] == 401
    assert (await deliver(client, body, signature(OLD_SECRET, body)))[0] == 401
    assert (await deliver(client, body, signature(SECRET, body + b" ")))[0] == 401
    assert (await deliver(client, body, signature(SECRET, body).upper()))[0] == 401
    assert (await deliver(client, body, "v1=" + "0" * 64))[0] == 401
    assert await status_of(bridge) == "firing"
    assert await timeline(bridge) == []
    # nothing was recorded: the genuine delivery of that event still acts
    assert (await signed(client, body))[0] == 200
    assert await status_of(bridge) == "acknowledged"


async def test_during_a_secret_rotation_either_signature_passes(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await paged_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    body = event("incident.acknowledged", 1, client.clock.now)
    # PagerDuty signs with every secret of the subscription: the retired one first here
    header = f"{signature(OLD_SECRET, body)}, {signature(SECRET, body)}"
    status, _ = await deliver(client, body, header)
    assert status == 200
    assert await status_of(client.bridge) == "acknowledged"


async def test_foreign_stale_other_and_oversized_deliveries(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await paged_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge, now = client.bridge, client.clock.now

    async def result(body: bytes) -> tuple[int, str]:
        status, text = await signed(client, body)
        return status, json.loads(text)["result"] if status != 413 else text

    # an incident that is not this bridge's (another integration of the PagerDuty service)
    foreign = hashlib.sha256(b"incident:999").hexdigest()
    assert await result(event("incident.acknowledged", 1, now, key=foreign)) == (
        200,
        "no open incident of this bridge has that key",
    )
    assert await result(event("incident.acknowledged", 1, now, key="x", event_id="01X")) == (
        200,
        "no open incident of this bridge has that key",
    )
    # another event type: answered, not acted on
    status, text = await result(event("incident.priority_updated", 1, now))
    assert (status, text) == (200, "incident.priority_updated is not acted on")
    # a captured, validly signed acknowledgement replayed hours later
    stale = event("incident.acknowledged", 1, now - timedelta(hours=2), event_id="01OLD")
    assert (await result(stale))[0] == 200
    assert await status_of(bridge) == "firing"
    # malformed, though signed
    assert (await result(b'{"event": []}'))[0] == 400
    assert (await result(b"not json"))[0] == 400
    # over the listener's body cap
    huge = event("incident.acknowledged", 1, now, event_id="01HUGE")[:-2] + b"," + b" " * 70_000
    assert (await result(huge + b"}}"))[0] == 413
    assert await status_of(bridge) == "firing"
    assert await timeline(bridge) == []

    # PagerDuty's own example: signed with another secret, refused here; the event type is one
    # the bridge ignores, so with our secret it is answered 200
    example = GO_PAGERDUTY_BODY.encode()
    assert (await deliver(client, example, GO_PAGERDUTY_SIGNATURE))[0] == 401
    assert (await deliver(client, example, signature(SECRET, example)))[0] == 200


async def test_without_a_secret_the_endpoint_is_off(db_url, aiohttp_client, fake_twilio, tmp_path):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    body = event("incident.acknowledged", 1, client.clock.now)
    status, _ = await deliver(client, body, "v1=" + hmac.new(b"", body, "sha256").hexdigest())
    assert status == 404


def test_the_oncall_file_names_each_persons_pagerduty_user(tmp_path) -> None:
    ok = """\
    people:
      - {id: alice, contacts: {sms: "+15005550011", pagerduty: PALICE1}}
      - {id: bob, contacts: {pagerduty: PBOB001}}
    """
    config = load_oncall(write(tmp_path, ok))
    assert config.person_by_pagerduty("PALICE1").id == "alice"
    assert config.person_by_pagerduty("PBOB001").id == "bob"  # acts only from PagerDuty
    assert config.person_by_pagerduty("PNOBODY") is None
    assert config.person_by_pagerduty("") is None
    assert config.people["alice"].contacts.for_via("sms") == ("+15005550011",)

    bad = """\
    people:
      - {id: alice, contacts: {sms: "+15005550011", pagerduty: "palice 1"}}
    """
    with pytest.raises(OncallConfigError) as info:
        load_oncall(write(tmp_path, bad))
    [error] = info.value.errors
    assert error.endswith(
        ":2:60: person alice.contacts.pagerduty: 'palice 1' is not a PagerDuty user id"
        " (like PLH1HKV)"
    )


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ({"id": "PALICE1", "type": "user_reference"}, "alice"),
        ({"id": "PSTRNGR", "type": "user_reference"}, "pagerduty:PSTRNGR"),
        ({"id": "PF9KMXH", "type": "service_reference"}, "pagerduty:service:PF9KMXH"),
        ({"id": "PALICE1", "type": "service_reference"}, "pagerduty:service:PALICE1"),
        ({"id": "P<script>", "type": "user_reference"}, "pagerduty"),
        ({"id": "PX", "type": "evil type!"}, "pagerduty"),
        (None, "pagerduty"),
        ("PALICE1", "pagerduty"),
    ],
)
def test_who_acts_for_an_agent(tmp_path, agent, expected) -> None:
    text = 'people:\n  - {id: alice, contacts: {sms: "+15005550011", pagerduty: PALICE1}}\n'
    context = SimpleNamespace(oncall=load_oncall(write(tmp_path, text)))
    assert person_of(context, agent) == expected  # type: ignore[arg-type]
