"""Slack by the Web API: one message per incident with buttons, its changes as thread replies and
updates in place, exactly one parent under races, Slack's error codes — the real client and the
real store (PostgreSQL) against the fake Slack."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from bridge.channels.base import DeliveryError
from bridge.channels.ratelimit import IntervalLimiter
from bridge.channels.slack import SlackNotifier
from bridge.channels.slack_incident import (
    ACTIONS_BLOCK,
    BUSY_RETRY_SECONDS,
    STATUS_BLOCK,
    WAIT_RETRY_SECONDS,
    IncidentThreads,
)
from bridge.channels.slack_webapi import SlackWebApi, is_slack_url
from bridge.oncall.incident_actions import action_message
from bridge.storage import Storage
from bridge.storage.escalations import IncidentState
from bridge.storage.slack_messages import SlackMessages
from passiton_common.http_client import async_client
from tests.bridge.channel_support import make_alert, make_message
from tests.bridge.support import T0, Clock, wait_until
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID


@pytest.fixture
async def http():
    async with async_client() as client:
        yield client


@pytest.fixture
async def storage(db_url):
    async with Storage(db_url) as storage:
        yield storage


def api_for(fake, http, token: str = BOT_TOKEN) -> SlackWebApi:
    return SlackWebApi(token, fake.api_url, http, limiter=IntervalLimiter(0), timeout=5)


def slack_for(fake, http, storage, *, clock=None, channel: str = "#alerts", token=BOT_TOKEN):
    incidents = IncidentThreads(
        api_for(fake, http, token), channel, SlackMessages(storage), clock=clock or Clock(T0)
    )
    return SlackNotifier(fake.webhook_url, http, limiter=IntervalLimiter(0), incidents=incidents)


async def open_incident(storage, incident_id: int = 7, severity: str = "high", title: str = "T"):
    async with storage.transaction() as tx:
        await tx.conn.execute(
            "INSERT INTO incidents (id, title, severity, status, probable_cause, opened_at,"
            " last_alert_at, updated_at)"
            " VALUES ($1, $2, $3, 'firing', 'PaymentFailureRateHigh', $4, $4, $4)",
            incident_id,
            title,
            severity,
            T0,
        )


async def set_incident(
    storage, incident_id: int = 7, *, status: str | None = None, severity: str | None = None
) -> None:
    async with storage.transaction() as tx:
        await tx.conn.execute(
            "UPDATE incidents SET status = COALESCE($2, status),"
            " severity = COALESCE($3, severity) WHERE id = $1",
            incident_id,
            status,
            severity,
        )


def page(incident_id: int = 7, severity: str = "high", **kw) -> object:
    alert = make_alert(severity=severity, **kw)
    return dataclasses.replace(
        make_message(alert), incident_id=incident_id, incident_title="Payments failing"
    )


def resolve(incident_id: int = 7) -> object:
    alert = make_alert(status="resolved", ends_at=T0 + timedelta(hours=1))
    return dataclasses.replace(
        make_message(alert), incident_id=incident_id, incident_title="Payments failing"
    )


def block(payload, block_id):
    return next((b for b in payload["blocks"] if b.get("block_id") == block_id), None)


async def test_first_page_is_one_message_with_buttons_and_its_ts_is_stored(
    fake_slack, http, storage
):
    await open_incident(storage, title="Payments failing for 3 organizations")
    await slack_for(fake_slack, http, storage).notify(page())

    [parent] = fake_slack.posts
    assert fake_slack.requests[0].headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert fake_slack.requests[0].path == "/api/chat.postMessage"
    assert fake_slack.messages == []  # not the webhook
    assert parent.channel == CHANNEL_ID
    assert parent.thread_ts is None
    header = parent.payload["blocks"][0]
    assert header["text"]["text"] == "[HIGH] Incident #7: Payments failing for 3 organizations"
    assert "Firing" in block(parent.payload, STATUS_BLOCK)["elements"][0]["text"]
    buttons = block(parent.payload, ACTIONS_BLOCK)["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("incident_acknowledge", "7"),
        ("incident_resolve", "7"),
        ("incident_silence", "7"),
    ]
    assert "confirm" in buttons[1]
    assert "confirm" not in buttons[0]
    assert "Payment failure rate 12% for org-123" in str(parent.payload["blocks"])
    assert parent.payload["text"].startswith("[FIRING] [HIGH] Incident #7")
    [row] = await storage.query("SELECT channel, ts FROM slack_messages WHERE incident_id = 7")
    assert (row["channel"], row["ts"]) == (CHANNEL_ID, parent.ts)  # the id Slack answered with
    [incident] = await storage.query("SELECT slack_thread_ts, slack_channel FROM incidents")
    assert (incident["slack_thread_ts"], incident["slack_channel"]) == (parent.ts, CHANNEL_ID)


async def test_later_messages_reply_in_the_thread_and_update_the_parent(fake_slack, http, storage):
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage)
    await slack.notify(page())
    await set_incident(storage, severity="critical")
    await slack.notify(page(severity="critical", fingerprint="b2"))
    [parent] = fake_slack.parents()
    assert parent.payload["blocks"][0]["text"]["text"].startswith("[CRITICAL] Incident #7")
    assert block(parent.payload, ACTIONS_BLOCK) is not None

    await set_incident(storage, status="resolved")
    await slack.notify(resolve())
    assert fake_slack.parents() == [parent]
    assert [r.thread_ts for r in parent.replies] == [parent.ts, parent.ts]
    assert parent.replies[1].payload["blocks"][0]["text"]["text"].startswith("[RESOLVED]")
    assert len(parent.edits) == 2
    assert block(parent.payload, ACTIONS_BLOCK) is None  # no buttons once resolved
    assert "Resolved" in block(parent.payload, STATUS_BLOCK)["elements"][0]["text"]
    # The body keeps every alert of the page (the resolve lists only the one resolving).
    assert "Payment failure rate 12%" in str(parent.payload["blocks"])
    paths = [r.path for r in fake_slack.requests]
    assert paths == ["/api/chat.postMessage"] + ["/api/chat.update", "/api/chat.postMessage"] * 2


async def test_acknowledged_parent_keeps_resolve_and_silence(fake_slack, http, storage):
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage)
    await slack.notify(page())
    await set_incident(storage, status="acknowledged", severity="critical")
    await slack.notify(page(severity="critical", fingerprint="b2"))
    [parent] = fake_slack.parents()
    actions = [b["action_id"] for b in block(parent.payload, ACTIONS_BLOCK)["elements"]]
    assert actions == ["incident_resolve", "incident_silence"]


async def test_a_quick_resolve_waits_for_the_first_page_in_flight(fake_slack, http, storage):
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage)
    fake_slack.hold = asyncio.Event()
    first = asyncio.create_task(slack.notify(page()))
    await wait_until(lambda: len(fake_slack.requests) == 1)  # the parent's post is in flight
    with pytest.raises(DeliveryError) as info:
        await slack.notify(resolve())
    assert info.value.retryable is True
    assert info.value.retry_after == BUSY_RETRY_SECONDS
    fake_slack.hold.set()
    await first
    await set_incident(storage, status="resolved")
    await slack.notify(resolve())
    [parent] = fake_slack.parents()
    assert len(parent.replies) == 1


async def test_a_resolve_before_the_first_page_waits_then_becomes_a_reply(
    fake_slack, http, storage
):
    await open_incident(storage)
    clock = Clock(T0)
    slack = slack_for(fake_slack, http, storage, clock=clock)
    with pytest.raises(DeliveryError) as info:
        await slack.notify(resolve())
    assert (info.value.retryable, info.value.retry_after) == (True, WAIT_RETRY_SECONDS)
    assert fake_slack.requests == []
    [row] = await storage.query("SELECT waiting_since, ts FROM slack_messages")
    assert row["waiting_since"] == T0
    assert row["ts"] is None
    await slack.notify(page())
    await slack.notify(resolve())
    [parent] = fake_slack.parents()
    assert len(parent.replies) == 1


async def test_a_resolve_whose_first_page_never_came_becomes_the_message(fake_slack, http, storage):
    await open_incident(storage)
    clock = Clock(T0)
    slack = slack_for(fake_slack, http, storage, clock=clock)
    with pytest.raises(DeliveryError):
        await slack.notify(resolve())
    clock.advance(9 * 60)
    with pytest.raises(DeliveryError):
        await slack.notify(resolve())
    clock.advance(60)
    await set_incident(storage, status="resolved")
    await slack.notify(resolve())
    [parent] = fake_slack.parents()
    assert block(parent.payload, ACTIONS_BLOCK) is None
    assert parent.replies == []
    await slack.notify(page())  # a late first page: a reply, never a second parent
    assert fake_slack.parents() == [parent]
    assert len(parent.replies) == 1


async def test_two_replicas_create_one_parent(fake_slack, http, db_url):
    async with Storage(db_url) as one, Storage(db_url) as two:
        await open_incident(one)
        first, second = slack_for(fake_slack, http, one), slack_for(fake_slack, http, two)
        fake_slack.hold = asyncio.Event()
        task = asyncio.create_task(first.notify(page()))
        await wait_until(lambda: len(fake_slack.requests) == 1)
        with pytest.raises(DeliveryError) as info:
            await second.notify(page())  # the same page, claimed again by another replica
        assert info.value.retryable is True
        fake_slack.hold.set()
        await task
        await second.notify(page())  # its retry: a reply in the thread
        [parent] = fake_slack.parents()
        assert len(parent.replies) == 1


async def test_racing_deliveries_never_post_two_parents(fake_slack, http, db_url):
    """Many workers on two replicas deliver the incident's messages at once, retrying as told:
    in the end there is one parent and every other message is in its thread."""
    async with Storage(db_url) as one, Storage(db_url) as two:
        await open_incident(one)
        notifiers = [slack_for(fake_slack, http, s) for s in (one, two)]
        messages = [page(fingerprint=f"f{i}") for i in range(6)]

        async def deliver(n: int, message) -> None:
            while True:
                try:
                    await notifiers[n % 2].notify(message)
                    return
                except DeliveryError as exc:
                    retryable = exc.retryable
                assert retryable
                await asyncio.sleep(0)

        await asyncio.gather(*(deliver(n, m) for n, m in enumerate(messages)))
        [parent] = fake_slack.parents()
        assert len(parent.replies) == 5
        assert len(await one.query("SELECT * FROM slack_messages")) == 1


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ("invalid_auth", False),
        ("channel_not_found", False),
        ("not_in_channel", False),
        ("msg_too_long", False),
        ("invalid_blocks", False),
        ("internal_error", True),
        ("fatal_error", True),
    ],
)
async def test_web_api_errors(fake_slack, http, storage, error, retryable):
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage)
    fake_slack.script_api_error(error)
    with pytest.raises(DeliveryError) as info:
        await slack.notify(page())
    assert info.value.retryable is retryable
    assert error in str(info.value)
    assert BOT_TOKEN not in str(info.value)
    assert fake_slack.posts == []
    # nothing recorded: the next attempt posts the one parent
    assert await storage.query("SELECT ts FROM slack_messages WHERE ts IS NOT NULL") == []
    await slack.notify(page())
    assert len(fake_slack.parents()) == 1


async def test_ratelimited_5xx_and_network_errors_are_retryable(fake_slack, http, storage):
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage)
    fake_slack.script_api_error("ratelimited", status=429, retry_after=30)
    with pytest.raises(DeliveryError) as info:
        await slack.notify(page())
    assert (info.value.retryable, info.value.retry_after) == (True, 30)
    # (that notifier's channel slot is now 30 s away: the next calls through a fresh one)
    slack = slack_for(fake_slack, http, storage)
    fake_slack.script(503, "upstream unavailable")
    with pytest.raises(DeliveryError) as info:
        await slack.notify(page())
    assert info.value.retryable is True
    fake_slack.script(200, "<html>proxy</html>")
    with pytest.raises(DeliveryError) as info:
        await slack.notify(page())
    assert info.value.retryable is True
    await fake_slack.stop()
    with pytest.raises(DeliveryError) as info:
        await slack.notify(page())
    assert info.value.retryable is True


async def test_a_parent_whose_answer_was_lost_is_found_and_adopted_not_posted_twice(
    fake_slack, http, storage
):
    """chat.postMessage has no idempotency key: Slack posts the parent, the answer is lost (the
    connection dropped after acting); the retry finds it by its metadata and adopts it."""
    await open_incident(storage, incident_id=8)
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage, channel=CHANNEL_ID)
    await slack.notify(page(incident_id=8))  # another incident's parent, in the channel before
    fake_slack.requests.clear()
    fake_slack.drop_answers = 1
    with pytest.raises(DeliveryError) as lost:
        await slack.notify(page())
    assert lost.value.retryable is True
    assert len(fake_slack.parents()) == 2  # Slack did post it
    sql = "SELECT ts, unanswered_since FROM slack_messages WHERE incident_id = 7"
    assert await storage.query(sql) == [{"ts": None, "unanswered_since": T0}]

    await slack.notify(page())  # the delivery's retry
    other, parent = fake_slack.parents()
    assert parent.metadata == {
        "event_type": "passiton_incident",
        "event_payload": {"incident_id": 7},
    }
    assert [r.path for r in fake_slack.requests] == [
        "/api/chat.postMessage",
        "/api/conversations.history",  # found, not posted again
        "/api/chat.update",  # brought up to date in place
    ]
    history = fake_slack.requests[1].json()
    assert (history["channel"], history["include_all_metadata"]) == (CHANNEL_ID, True)
    assert await storage.query(sql) == [{"ts": parent.ts, "unanswered_since": None}]
    await set_incident(storage, status="resolved")
    await slack.notify(resolve())
    assert len(fake_slack.parents()) == 2
    assert len(parent.replies) == 1
    assert other.replies == []


async def test_a_parent_slack_never_posted_is_posted_once_after_looking(fake_slack, http, storage):
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage, channel=CHANNEL_ID)
    fake_slack.script(503, "upstream unavailable")  # refused before Slack acted
    with pytest.raises(DeliveryError):
        await slack.notify(page())
    await slack.notify(page())
    assert len(fake_slack.parents()) == 1
    assert [r.path for r in fake_slack.requests][1:] == [
        "/api/conversations.history",
        "/api/chat.postMessage",
    ]


async def test_without_the_history_scope_the_parent_is_posted_again(fake_slack, http, storage):
    """What is left: a token without channels:history (or a #name never answered with its id)
    cannot look, so the parent is posted again, with a warning, rather than not at all."""
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage, channel=CHANNEL_ID)
    fake_slack.history_scope = False
    fake_slack.drop_answers = 1
    with pytest.raises(DeliveryError):
        await slack.notify(page())
    await slack.notify(page())
    assert len(fake_slack.parents()) == 2
    assert fake_slack.requests[1].path == "/api/conversations.history"


async def test_the_fakes_own_refusals(fake_slack, http, storage):
    await open_incident(storage)
    with pytest.raises(DeliveryError, match="invalid_auth") as info:
        await slack_for(fake_slack, http, storage, token="xoxb-wrong").notify(page())
    assert info.value.retryable is False
    with pytest.raises(DeliveryError, match="channel_not_found"):
        await slack_for(fake_slack, http, storage, channel="C0NOWHERE").notify(page())
    fake_slack.not_in_channel.add(CHANNEL_ID)
    with pytest.raises(DeliveryError, match="not_in_channel"):
        await slack_for(fake_slack, http, storage).notify(page())
    assert fake_slack.posts == []


async def test_a_failed_update_in_place(fake_slack, http, storage):
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage)
    await slack.notify(page())
    [parent] = fake_slack.parents()
    # Retryable: nothing goes out, the whole delivery is tried again.
    fake_slack.script_api_error("internal_error")
    with pytest.raises(DeliveryError) as info:
        await slack.notify(resolve())
    assert info.value.retryable is True
    assert parent.replies == []
    # Permanent (the parent was deleted, say): the reply still goes out.
    fake_slack.script_api_error("message_not_found")
    await slack.notify(resolve())
    assert len(parent.replies) == 1


async def test_mentions_are_thread_replies_and_never_the_parent(fake_slack, http, storage):
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage)
    notice = dataclasses.replace(
        page(), notice="You are paged", mentions=("U0ALICE", "<!channel>", "W012ABC", "bob")
    )
    await slack.notify(notice)  # no parent yet: a message of its own
    [alone] = fake_slack.posts
    assert alone.payload["blocks"][0]["text"]["text"] == "<@U0ALICE> <@W012ABC>"
    assert block(alone.payload, ACTIONS_BLOCK) is None
    [row] = await storage.query("SELECT ts FROM slack_messages")
    assert row["ts"] is None

    await slack.notify(page())
    parent = fake_slack.posts[-1]
    await slack.notify(notice)
    [reply] = parent.replies
    assert reply.payload["text"].startswith("<@U0ALICE> <@W012ABC>\n")
    assert "<!channel>" not in str(reply.payload)
    assert parent.edits == []  # a notice changes nothing on the incident's message


async def test_without_incident_or_with_recipients(fake_slack, http, storage):
    slack = slack_for(fake_slack, http, storage)
    await slack.notify(make_message())  # the dead man's switch: no incident, no buttons
    [alone] = fake_slack.posts
    assert block(alone.payload, ACTIONS_BLOCK) is None
    await open_incident(storage, 8)
    await slack.notify(page(8))
    own = dataclasses.replace(page(8), recipients=(fake_slack.webhook_url,))
    await slack.notify(own)  # an organization's own webhook: the webhook, as before
    assert len(fake_slack.messages) == 1
    assert len(fake_slack.posts) == 2


async def test_no_such_incident_is_a_message_of_its_own(fake_slack, http, storage):
    await slack_for(fake_slack, http, storage).notify(page(99))
    [alone] = fake_slack.posts
    assert alone.thread_ts is None
    assert await storage.query("SELECT * FROM slack_messages") == []


async def test_fake_takes_form_bodies_like_slack(fake_slack, http):
    response = await http.post(
        f"{fake_slack.api_url}/chat.postMessage",
        data={"token": BOT_TOKEN, "channel": CHANNEL_ID, "text": "hi", "blocks": "[]"},
    )
    assert response.json()["ok"] is True
    response = await http.post(
        f"{fake_slack.api_url}/chat.postMessage", data={"channel": CHANNEL_ID, "text": "hi"}
    )
    assert response.json() == {"ok": False, "error": "not_authed"}


def test_is_slack_url():
    assert is_slack_url("https://hooks.slack.com/actions/T1/2/abc")
    assert not is_slack_url("http://hooks.slack.com/actions/T1/2/abc")
    assert not is_slack_url("https://hooks.slack.com.evil.example/x")
    assert not is_slack_url("https://evilslack.com/x")
    assert not is_slack_url("https://127.0.0.1/x")


async def test_an_unacknowledgement_brings_the_acknowledge_button_back(fake_slack, http, storage):
    # what StoredIncidentActions mirrors to Slack (issue 21): the parent shows the incident
    # firing again, with its Acknowledge button, and the thread says who and how
    await open_incident(storage)
    slack = slack_for(fake_slack, http, storage)
    await slack.notify(page())
    await set_incident(storage, status="acknowledged")
    state = IncidentState(7, "acknowledged", "T", "high", ["PaymentFailureRateHigh"], {})
    await slack.notify(action_message(state, "acknowledge", "alice", "console"))
    [parent] = fake_slack.parents()
    actions = [b["action_id"] for b in block(parent.payload, ACTIONS_BLOCK)["elements"]]
    assert actions == ["incident_resolve", "incident_silence"]
    await set_incident(storage, status="firing")
    await slack.notify(action_message(state, "unacknowledge", "bob", "console"))
    actions = [b["action_id"] for b in block(parent.payload, ACTIONS_BLOCK)["elements"]]
    assert actions == ["incident_acknowledge", "incident_resolve", "incident_silence"]
    assert parent.replies[-1].payload["text"] == "Unacknowledged by bob (console)."
