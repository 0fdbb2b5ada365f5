"""The public listener as a stranger meets it: forged and replayed Twilio callbacks, unknown
numbers, oversized bodies, floods, e-mail links that are forged, expired, scanned or reused, a
Slack press replayed to another replica."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import urlencode

import aiohttp
import pytest
from icalendar import Calendar

from bridge.app import Bridge
from bridge.oncall.calendar import calendar_secret, feed_url
from bridge.oncall.links import AckLinks
from bridge.oncall.replies import Reply, parse_reply
from bridge.public.slack import slack_signature
from tests.bridge.support import T0, am_alert
from tests.oncall.bridge_support import (
    ALICE_PHONE,
    PUBLIC_URL,
    oncall_bridge,
    post_alerts,
    public_post,
    twilio_form,
)

CRITICAL = am_alert("PaymentProcessingFailures", severity="critical", fingerprint="c0ffee01")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("ack", Reply("acknowledge", None)),
        (" ACK ", Reply("acknowledge", None)),
        ("1", Reply("acknowledge", None)),
        ("12a", Reply("acknowledge", 12)),
        ("12A", Reply("acknowledge", 12)),
        ("12c", Reply("resolve", 12)),
        ("12 ack", Reply("acknowledge", 12)),
        ("resolve 7", Reply("resolve", 7)),
        ("close", Reply("resolve", None)),
        ("help", None),
        ("", None),
        ("12x", None),
        ("0a", None),
        ("1" * 19 + "a", None),  # beyond a BIGINT
        ("\u0661\u0662a", None),  # Arabic-Indic digits are digits to Python, not to us
        ("please ack this now", None),
        ("a" * 10_000, None),
    ],
)
def test_sms_replies(body: str, expected: Reply | None) -> None:
    assert parse_reply(body) == expected


async def sms(bridge: Bridge, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    return await public_post(f"http://127.0.0.1:{bridge.public_port}/v1/twilio/sms", form, headers)


def signed(form: dict[str, str]) -> dict[str, str]:
    return twilio_form(PUBLIC_URL + "/v1/twilio/sms", form)


async def status_of(bridge: Bridge) -> str:
    [row] = await bridge.storage.incidents()
    return row.status


async def test_forged_unknown_and_malformed_sms_change_nothing(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge = client.bridge
    await post_alerts(client, CRITICAL)
    await bridge.escalator.run_once()
    ack = {"From": ALICE_PHONE, "Body": "1a", "MessageSid": "SM1"}

    assert (await sms(bridge, ack, {}))[0] == 401  # unsigned
    # signed for another URL (the signature covers the address Twilio called)
    other = twilio_form("https://elsewhere.example/v1/twilio/sms", ack)
    assert (await sms(bridge, ack, other))[0] == 401
    # signed, then one field changed
    assert (await sms(bridge, {**ack, "Body": "1c"}, signed(ack)))[0] == 401
    # a signed message from a number that is nobody's: 403 and an empty answer (no text back)
    stranger = {"From": "+15005550999", "Body": "1a", "MessageSid": "SM2"}
    status, text = await sms(bridge, stranger, signed(stranger))
    assert status == 403
    assert "<Message>" not in text
    assert await status_of(bridge) == "firing"

    # a reply the bridge does not understand gets the help text and changes nothing
    chatter = {"From": ALICE_PHONE, "Body": "who is this?", "MessageSid": "SM3"}
    status, text = await sms(bridge, chatter, signed(chatter))
    assert status == 200
    assert "reply ACK" in text
    # an incident that does not exist
    nothing = {"From": ALICE_PHONE, "Body": "99a", "MessageSid": "SM4"}
    status, text = await sms(bridge, nothing, signed(nothing))
    assert (status, "no incident #99" in text) == (200, True)
    assert await status_of(bridge) == "firing"

    # too large a body is refused before anything is read
    huge = {"From": ALICE_PHONE, "Body": "x" * 70_000, "MessageSid": "SM5"}
    assert (await sms(bridge, huge, signed(huge)))[0] == 413

    status, text = await sms(bridge, ack, signed(ack))
    assert status == 200
    assert "Incident #1 acknowledged" in text
    metrics = await (await client.get("/metrics")).text()
    assert (
        'passiton_bridge_public_requests_total{endpoint="twilio_sms",outcome="unauthorized"} 3.0'
        in metrics
    )
    assert (
        'passiton_bridge_incident_actions_total{action="acknowledge",outcome="changed",via="sms"}'
        " 1.0" in metrics
    )


async def test_a_flood_from_one_address_is_turned_away(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    url = f"http://127.0.0.1:{client.bridge.public_port}/v1/twilio/sms"
    statuses = []
    async with aiohttp.ClientSession() as session:
        for i in range(130):
            async with session.post(url, data={"Body": "ack", "MessageSid": f"SM{i}"}) as r:
                statuses.append(r.status)
                retry_after = r.headers.get("Retry-After")
    assert statuses.count(401) == 120
    assert statuses[-1] == 429
    assert retry_after is not None
    assert 1 <= int(retry_after) <= 61


async def test_email_links_act_once_and_only_by_post(db_url, aiohttp_client, fake_twilio, tmp_path):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge = client.bridge
    await post_alerts(client, CRITICAL)
    links = bridge.links
    assert links is not None
    base = f"http://127.0.0.1:{bridge.public_port}"
    token = links.token(1, "alice")
    async with aiohttp.ClientSession() as session:
        # a mail scanner following the link: a confirmation page, nothing changes
        async with session.get(f"{base}/v1/ack/{token}") as page:
            assert page.status == 200
            html = await page.text()
            assert page.headers["Referrer-Policy"] == "no-referrer"
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert 'value="acknowledge"' in html
        assert await status_of(bridge) == "firing"

        async with session.post(f"{base}/v1/ack/{token}", data={"action": "acknowledge"}) as r:
            assert r.status == 200
            assert "Incident #1 acknowledged" in await r.text()
        assert await status_of(bridge) == "acknowledged"
        # the same link again: used
        async with session.post(f"{base}/v1/ack/{token}", data={"action": "resolve"}) as r:
            assert r.status == 409
        assert await status_of(bridge) == "acknowledged"

        # forged: another key; tampered: one character changed; expired
        forged = AckLinks("another-secret-entirely", PUBLIC_URL, client.clock).token(1, "alice")
        tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        client.clock.advance(13 * 3600)
        expired = token
        fresh = links.token(1, "alice")
        for bad in (forged, tampered, expired, "x" * 500, "<script>"):
            async with session.post(f"{base}/v1/ack/{bad}", data={"action": "resolve"}) as r:
                assert r.status == 404
                assert "<script>" not in await r.text()
        assert await status_of(bridge) == "acknowledged"
        # a link for someone who is no longer in the on-call file does nothing
        stranger = links.token(1, "mallory")
        async with session.post(f"{base}/v1/ack/{stranger}", data={"action": "resolve"}) as r:
            assert r.status == 404
        async with session.post(f"{base}/v1/ack/{fresh}", data={"action": "resolve"}) as r:
            assert r.status == 200
    assert await status_of(bridge) == "resolved"
    events = await bridge.storage.query(
        "SELECT kind, detail->>'via' AS via, detail->>'by' AS by FROM incident_events"
        " WHERE kind IN ('acknowledged', 'resolved') ORDER BY id"
    )
    assert [(e["kind"], e["via"], e["by"]) for e in events] == [
        ("acknowledged", "email", "alice"),
        ("resolved", "email", "alice"),
    ]


async def test_a_slack_press_replayed_to_another_replica_is_refused(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    """Two bridges on one database (replicas behind a load balancer): Slack's signed press
    reaches the first and acts; the same request replayed to the second is a 409 there, and
    the second never calls the incident actions."""
    secret = "a-signing-secret-of-this-test-0123"
    one = await oncall_bridge(
        db_url, aiohttp_client, fake_twilio, tmp_path, slack_signing_secret=secret
    )
    two = await oncall_bridge(
        db_url, aiohttp_client, fake_twilio, tmp_path, slack_signing_secret=secret
    )
    await post_alerts(one, CRITICAL)
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "actions": [{"action_id": "incident_acknowledge", "value": "1", "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(one.clock().timestamp()))
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret, ts, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    answers = []
    async with aiohttp.ClientSession() as session:
        for replica in (one, two, one):
            url = f"http://127.0.0.1:{replica.bridge.public_port}/v1/slack/interactions"
            async with session.post(url, data=body, headers=headers) as response:
                answers.append((response.status, await response.text()))
    assert answers == [(200, ""), (409, "replayed\n"), (409, "replayed\n")]
    assert await status_of(one.bridge) == "acknowledged"
    events = await one.bridge.storage.query(
        "SELECT detail->>'via' AS via FROM incident_events WHERE kind = 'acknowledged'"
    )
    assert events == [{"via": "slack"}]

    def slack_actions(client) -> float:
        counter = client.bridge.metrics.incident_actions
        return sum(
            s.value
            for m in counter.collect()
            for s in m.samples
            if s.name.endswith("_total") and s.labels.get("via") == "slack"
        )

    assert (slack_actions(one), slack_actions(two)) == (1, 0)


async def test_only_the_callbacks_are_served(db_url, aiohttp_client, fake_twilio, tmp_path):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    base = f"http://127.0.0.1:{client.bridge.public_port}"
    async with aiohttp.ClientSession() as session:
        for path in ("/metrics", "/console/", "/v1/alertmanager", "/-/ready", "/api/v1/incidents"):
            async with session.get(base + path) as r:
                assert r.status in (404, 405), path
        async with session.get(base + "/-/healthy") as r:
            assert r.status == 200
    assert re.match(r"\d+", str(client.bridge.public_port))


async def test_calendar_feeds_need_their_own_token(db_url, aiohttp_client, fake_twilio, tmp_path):
    client = await oncall_bridge(db_url, aiohttp_client, fake_twilio, tmp_path)
    bridge = client.bridge
    await bridge.storage.add_override(
        "primary",
        "bob",
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=3),
        replaces="alice",
        reason="dentist",
    )
    secret = calendar_secret(bridge.config.webhook_token)
    base = f"http://127.0.0.1:{bridge.public_port}"

    def local(url: str) -> str:
        return url.replace(PUBLIC_URL, base)

    async with aiohttp.ClientSession() as session:
        async with session.get(local(feed_url(PUBLIC_URL, secret, "person", "bob"))) as r:
            assert r.status == 200
            assert r.content_type == "text/calendar"
            calendar = Calendar.from_ical(await r.read())
        starts = sorted(e.decoded("dtstart") for e in calendar.walk("VEVENT"))
        assert T0 + timedelta(hours=1) in starts  # the override covering Alice's time
        alice = feed_url(PUBLIC_URL, secret, "person", "alice")
        token = alice.rsplit("=", 1)[1]
        for bad in (
            f"{base}/v1/oncall/person/bob.ics?token={token}",  # Alice's token for Bob's feed
            f"{base}/v1/oncall/person/alice.ics?token={token[:-1]}x",
            f"{base}/v1/oncall/person/alice.ics",
            f"{base}/v1/oncall/team/alice.ics?token={token}",
            local(feed_url(PUBLIC_URL, secret, "person", "mallory")),  # nobody in the file
        ):
            async with session.get(bad) as r:
                assert r.status == 404, bad
