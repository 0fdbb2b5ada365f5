"""POST /v1/slack/interactions attacked: unsigned, wrong secret, stale, replayed, oversized,
unknown user, unknown incident, odd values — nothing changes; a signed press acts and the
incident's message is updated in place (the real Web API client against the fake Slack).
Replays are recorded in the database's ``inbound_requests`` (two replicas sharing it:
``tests/oncall/test_public_listener.py``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from aiohttp import web

from bridge.channels.ratelimit import IntervalLimiter
from bridge.channels.slack_incident import ACTIONS_BLOCK, STATUS_BLOCK, parent_blocks
from bridge.channels.slack_webapi import SlackWebApi
from bridge.oncall.actions import ActionResult, UnknownIncident
from bridge.public.context import InboundRequests
from bridge.public.slack import (
    NOT_ON_CALL,
    SlackInteractionsConfig,
    slack_interactions,
    slack_signature,
)
from bridge.storage import open_storage
from passiton_common.http_client import async_client
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID

SECRET = "a-signing-secret-of-this-test-0123"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))
PATH = "/v1/slack/interactions"
PEOPLE = {"U0ALICE": "alice"}


class RecordingActions:
    """An ``IncidentActions`` that records its calls; incident 7 exists, 66 fails."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.status = {7: "firing"}

    async def act(self, incident_id, action, *, person_id, via, silence_for=None) -> ActionResult:
        self.calls.append((incident_id, action, person_id, via, silence_for))
        if incident_id == 66:
            raise RuntimeError("the database went away mid-action")
        if incident_id not in self.status:
            raise UnknownIncident(incident_id)
        before = self.status[incident_id]
        after = {"acknowledge": "acknowledged", "resolve": "resolved"}.get(action, before)
        self.status[incident_id] = after
        return ActionResult(incident_id, action, after != before, after, "Payments failing")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def http():
    async with async_client() as client:
        yield client


@pytest.fixture
def actions():
    return RecordingActions()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def replays(db_url, clock):
    async with open_storage(db_url) as storage:
        yield InboundRequests(storage, clock)


@pytest.fixture
async def parent(fake_slack, http):
    """The incident's message as the channel posted it."""
    api = SlackWebApi(BOT_TOKEN, fake_slack.api_url, http, limiter=IntervalLimiter(0))
    blocks = parent_blocks(7, "firing", "high", "Payments failing", [])
    posted = await api.post_message(CHANNEL_ID, "[FIRING] Incident #7", blocks)
    fake_slack.requests.clear()
    return fake_slack.message(posted.channel, posted.ts)


def make_handler(fake_slack, http, actions, clock, replays, **config):
    if config.get("response_url_allowed", "fake") == "fake":  # the fake stands in for Slack
        config["response_url_allowed"] = lambda url: url.startswith(fake_slack.base_url)
    elif config["response_url_allowed"] is None:  # the default: slack.com only
        del config["response_url_allowed"]
    api = SlackWebApi(BOT_TOKEN, fake_slack.api_url, http, limiter=IntervalLimiter(0))
    return slack_interactions(
        SlackInteractionsConfig(signing_secret=SECRET, **config),
        actions,
        PEOPLE,
        clock,
        api,
        replays,
    )


@pytest.fixture
async def client(aiohttp_client, fake_slack, http, actions, clock, replays):
    handler = make_handler(fake_slack, http, actions, clock, replays, max_body_bytes=16 * 1024)
    app = web.Application()
    app.router.add_post(PATH, handler)
    test_client = await aiohttp_client(app)
    test_client.handler = handler
    return test_client


def press(
    action_id: str = "incident_resolve",
    value: str = "7",
    user: str = "U0ALICE",
    parent=None,
    response_url: str = "https://hooks.slack.com/actions/T1/2/x",
) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "alice"},
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
        "response_url": response_url,
    }
    if parent is not None:
        payload["container"] = {
            "type": "message",
            "channel_id": parent.channel,
            "message_ts": parent.ts,
        }
        payload["message"] = {"ts": parent.ts, "blocks": parent.payload["blocks"]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, *, secret: str = SECRET, ts: str = TS) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret, ts, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def send(client, body: bytes, headers: dict[str, str]):
    response = await client.post(PATH, data=body, headers=headers)
    await client.handler.__self__.drain()
    return response


def test_slacks_documented_example_signature():
    """https://api.slack.com/authentication/verifying-requests-from-slack, its worked example."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
        b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
        b"00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d1"
        b"0d2c447fce8b6703c"
    )
    assert slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


async def test_slacks_documented_example_passes_the_signature_check(
    aiohttp_client, fake_slack, http, actions, replays
):
    clock = Clock()
    clock.now = datetime.fromtimestamp(1531420618 + 60, UTC)
    handler = slack_interactions(
        SlackInteractionsConfig(signing_secret="8f742231b10e8888abcd99yyyzzz85a5"),
        actions,
        PEOPLE,
        clock,
        None,
        replays,
    )
    app = web.Application()
    app.router.add_post(PATH, handler)
    client = await aiohttp_client(app)
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
        b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
        b"00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d1"
        b"0d2c447fce8b6703c"
    )
    headers = {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    tampered = await client.post(PATH, data=body.replace(b"foobar", b"foobaz"), headers=headers)
    assert tampered.status == 401
    assert await tampered.text() == "bad signature\n"
    response = await client.post(PATH, data=body, headers=headers)
    # Authentic (not 401), but a slash command, not a button press.
    assert response.status == 400
    assert await response.text() == "no payload\n"
    assert actions.calls == []


async def test_a_signed_press_resolves_and_updates_the_message(client, actions, fake_slack, parent):
    response = await send(client, press(parent=parent), signed(press(parent=parent)))
    assert response.status == 200
    assert actions.calls == [(7, "resolve", "alice", "slack", None)]
    [update] = fake_slack.requests
    assert update.path == "/api/chat.update"
    assert update.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert len(parent.edits) == 1
    blocks = parent.payload["blocks"]
    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in blocks)  # no buttons left
    [status] = [b for b in blocks if b.get("block_id") == STATUS_BLOCK]
    assert status["elements"][0]["text"] == ":white_check_mark: *Resolved* by <@U0ALICE>"
    assert blocks[0]["text"]["text"] == "[HIGH] Incident #7: Payments failing"
    assert parent.payload["text"].startswith("[RESOLVED] [HIGH] Incident #7")


async def test_acknowledge_leaves_resolve_and_silence(client, actions, fake_slack, parent):
    body = press("incident_acknowledge", parent=parent)
    assert (await send(client, body, signed(body))).status == 200
    [actions_block] = [b for b in parent.payload["blocks"] if b.get("block_id") == ACTIONS_BLOCK]
    ids = [e["action_id"] for e in actions_block["elements"]]
    assert ids == ["incident_resolve", "incident_silence"]


async def test_silence_for_is_passed(aiohttp_client, fake_slack, http, actions, clock, replays):
    handler = make_handler(
        fake_slack, http, actions, clock, replays, silence_for=timedelta(hours=2)
    )
    app = web.Application()
    app.router.add_post(PATH, handler)
    client = await aiohttp_client(app)
    body = press("incident_silence")
    assert (await client.post(PATH, data=body, headers=signed(body))).status == 200
    assert actions.calls == [(7, "silence", "alice", "slack", timedelta(hours=2))]


async def test_unsigned_and_wrong_secret_change_nothing(client, actions, fake_slack):
    body = press()
    assert (await send(client, body, {})).status == 401
    no_ts = {"X-Slack-Signature": signed(body)["X-Slack-Signature"]}
    assert (await send(client, body, no_ts)).status == 401
    assert (await send(client, body, signed(body, secret="another-secret"))).status == 401
    bad = dict(signed(body), **{"X-Slack-Signature": "v0=" + "0" * 64})
    assert (await send(client, body, bad)).status == 401
    odd = dict(signed(body), **{"X-Slack-Signature": "v0=ünïcode"})
    assert (await send(client, body, odd)).status == 401
    # A signature over another body does not carry over.
    assert (await send(client, press(value="8"), signed(body))).status == 401
    assert actions.calls == []
    assert fake_slack.requests == []


@pytest.mark.parametrize("skew", [-301, 301, -(10**6)])
async def test_stale_or_future_timestamps_are_refused(client, actions, skew):
    body = press()
    response = await send(client, body, signed(body, ts=str(int(TS) + skew)))
    assert response.status == 401
    assert "stale" in await response.text()
    assert actions.calls == []


async def test_odd_timestamps_are_refused(client, actions):
    body = press()
    for ts in ("", "-5", "1e9", "+" + TS, TS + ".5", "9" * 40):
        headers = signed(body)
        headers["X-Slack-Request-Timestamp"] = ts
        assert (await send(client, body, headers)).status == 401, ts
    assert actions.calls == []


async def test_a_replayed_press_is_refused(client, actions, clock, replays):
    body = press()
    headers = signed(body)
    assert (await send(client, body, headers)).status == 200
    replayed = await send(client, body, headers)
    assert replayed.status == 409
    assert await replayed.text() == "replayed\n"
    clock.now += timedelta(seconds=299)
    assert (await send(client, body, headers)).status == 409
    clock.now += timedelta(seconds=2)  # and once it left the window, the timestamp is stale
    assert (await send(client, body, headers)).status == 401
    assert len(actions.calls) == 1
    rows = await replays.storage.query("SELECT source, request_id FROM inbound_requests")
    assert rows == [{"source": "slack", "request_id": headers["X-Slack-Signature"]}]


async def test_a_press_that_could_not_be_applied_can_be_sent_again(client, actions, replays):
    body = press(value="66")
    for _ in range(2):  # forgotten after the failure: the retry is not taken for a replay
        assert (await send(client, body, signed(body))).status == 503
    assert len(actions.calls) == 2
    assert await replays.storage.query("SELECT 1 FROM inbound_requests") == []


async def test_oversized_bodies_are_refused_unread(client, actions):
    body = press() + b"&pad=" + b"x" * (17 * 1024)
    assert (await send(client, body, signed(body))).status == 413

    async def chunks():  # no Content-Length: counted while reading
        for _ in range(20):
            yield b"x" * 1024

    response = await client.post(PATH, data=chunks(), headers=signed(b"x" * 20 * 1024))
    assert response.status == 413
    assert actions.calls == []


async def test_an_unknown_user_is_told_ephemerally_only_through_slack(
    aiohttp_client, client, actions, fake_slack, http, clock, replays
):
    hook = fake_slack.base_url + "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    body = press(user="U0MALLORY", response_url=hook)
    response = await send(client, body, signed(body))
    assert response.status == 403
    assert actions.calls == []
    [ephemeral] = fake_slack.messages
    assert ephemeral == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": NOT_ON_CALL,
    }

    # With the default rule only a slack.com response_url is answered: here, nothing is sent.
    handler = make_handler(fake_slack, http, actions, clock, replays, response_url_allowed=None)
    assert handler.__self__.config.response_url_allowed("https://hooks.slack.com/actions/x")
    app = web.Application()
    app.router.add_post(PATH, handler)
    default = await aiohttp_client(app)
    body = press(user="U0MALLORY", response_url=hook + "?again")
    assert (await default.post(PATH, data=body, headers=signed(body))).status == 403
    await handler.__self__.drain()
    assert len(fake_slack.messages) == 1
    # An id that is not a Slack user id at all is just as unknown.
    body = press(user="<!channel>")
    assert (await send(client, body, signed(body))).status == 403


async def test_an_unknown_incident_changes_nothing(client, actions, fake_slack, parent):
    body = press(value="99", parent=parent)
    response = await send(client, body, signed(body))
    assert response.status == 404
    assert actions.calls == [(99, "resolve", "alice", "slack", None)]  # refused by the actions
    assert fake_slack.requests == []
    assert parent.edits == []


@pytest.mark.parametrize("value", ["seven", "", "-7", "0", "7.0", "1e3", "\uff17", "9" * 40, None])
async def test_a_value_that_is_not_an_incident_id_is_malformed(client, actions, value):
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "actions": [{"action_id": "incident_resolve", "value": value}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert (await send(client, body, signed(body))).status == 400
    assert actions.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"payload=%7Bnot-json",
        b"payload=%5B%5D",
        b"other=1",
        urlencode({"payload": json.dumps({"type": "view_submission"})}).encode(),
        urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}).encode(),
        press("incident_delete_everything"),
        press() + b"&payload=%7B%7D",  # two payloads
        b"\xff\xfe",
    ],
)
async def test_malformed_payloads(client, actions, body):
    assert (await send(client, body, signed(body))).status == 400
    assert actions.calls == []
