"""The ``webpush`` channel through a local push service that checks the VAPID JWT and decrypts
each page with the subscription's private key, as a browser would; subscriptions in the real
database."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from bridge.channels.base import DeliveryError
from bridge.channels.config import ChannelsConfig
from bridge.channels.webpush import WebPushNotifier, payload
from bridge.channels.webpush_keys import VapidKeys, WebPushSettings, read_webpush
from bridge.doctor import oncall_checks
from bridge.storage import Storage, open_storage
from bridge.storage.migrations import load_migrations
from bridge.storage.push import MAX_SUBSCRIPTIONS_PER_USER, PushSubscriptions, TooManySubscriptions
from passiton_common.settings import ConfigError, EnvReader
from passiton_monitoring.cli import main
from tests.bridge.channel_support import make_alert, make_message
from tests.bridge.support import T0, make_config
from tests.console.push_support import PUSH_ONCALL_YAML
from tests.fakes.push import FakePushService
from tests.oncall.bridge_support import write_oncall

KEYS = VapidKeys.generate()
SETTINGS = WebPushSettings(KEYS, "mailto:oncall@example.org")


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[Storage]:
    async with open_storage(db_url) as store:
        for name in ("alice", "bob"):
            await store.console().upsert_user(name, "x", "responder", T0)
        yield store


@pytest.fixture
async def http(client_ssl_context: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=client_ssl_context) as client:
        yield client


async def _subscribe(store: PushSubscriptions, push: FakePushService, user: str) -> str:
    sub = push.subscribe(application_server_key=KEYS.public_key)
    keys = sub["keys"]
    await store.add(user, sub["endpoint"], keys["p256dh"], keys["auth"], "Firefox", T0)
    return sub["endpoint"]


def _page(**changes):
    message = make_message(make_alert(summary="Payment failure rate 12% for org-123"))
    message = replace(
        message,
        incident_id=42,
        incident_title="Payments failing",
        notice="You are on call for this incident (step 1 of 2).",
        ack_token="signed-token",
    )
    return replace(message, **changes)


async def test_a_page_arrives_encrypted_signed_and_decryptable(storage, http, fake_push):
    store = PushSubscriptions(storage)
    first = await _subscribe(store, fake_push, "alice")
    await _subscribe(store, fake_push, "alice")
    outcomes: list[str] = []
    notifier = WebPushNotifier(SETTINGS, store, http)
    notifier.count = outcomes.append
    await notifier.notify(_page(recipients=("alice",)))
    assert fake_push.refusals == []
    assert len(fake_push.messages) == 2
    assert outcomes == ["sent", "sent"]
    message = fake_push.messages[0]
    assert message.json() == {
        "v": 1,
        "title": "CRITICAL #42: Payments failing",
        "body": "Payment failure rate 12% for org-123\n"
        "You are on call for this incident (step 1 of 2).",
        "incident": 42,
        "severity": "critical",
        "status": "firing",
        "url": "/console/incidents/42",
        "tag": "incident-42",
        "token": "signed-token",
    }
    # the body on the wire is not the page: it was encrypted to the browser's key
    assert b"Payments failing" not in fake_push.requests[0].body
    assert message.claims["aud"] == fake_push.base_url
    assert message.claims["sub"] == "mailto:oncall@example.org"
    assert message.headers["urgency"] == "high"
    assert message.headers["topic"] == "incident-42"
    assert int(message.headers["ttl"]) > 0
    (row,) = [s for s in await store.for_user("alice") if s.endpoint == first]
    assert row.last_success_at is not None
    assert row.last_failure is None


async def test_a_gone_subscription_is_removed_and_not_retried(storage, http, fake_push):
    store = PushSubscriptions(storage)
    gone = await _subscribe(store, fake_push, "alice")
    await _subscribe(store, fake_push, "alice")
    fake_push.expire(gone)
    outcomes: list[str] = []
    notifier = WebPushNotifier(SETTINGS, store, http)
    notifier.count = outcomes.append
    await notifier.notify(_page(recipients=("alice",)))  # the other browser got it: success
    assert sorted(outcomes) == ["gone", "sent"]
    assert gone not in [s.endpoint for s in await store.for_user("alice")]
    # a user whose only browser is gone: permanent, and the subscription is removed
    only = await _subscribe(store, fake_push, "bob")
    fake_push.script(404, "unknown")
    with pytest.raises(DeliveryError) as failed:
        await notifier.notify(_page(recipients=("bob",)))
    assert not failed.value.retryable
    assert only not in [s.endpoint for s in await store.for_user("bob")]
    # and a user with no browser at all
    with pytest.raises(DeliveryError, match="no browser") as none:
        await notifier.notify(_page(recipients=("bob",)))
    assert not none.value.retryable
    assert outcomes[-1] == "no_subscription"


# the push service's answer → (retryable, retry_after, what is counted)
ANSWERS = [
    (429, {"Retry-After": "120"}, True, 120.0, "rate_limited"),
    (503, {}, True, None, "retry"),
    (500, {}, True, None, "retry"),
    (413, {}, False, None, "refused"),
    (400, {}, False, None, "refused"),
]


async def test_push_service_errors_are_classified(storage, http, fake_push):
    store = PushSubscriptions(storage)
    endpoint = await _subscribe(store, fake_push, "alice")
    notifier = WebPushNotifier(SETTINGS, store, http)
    for status, headers, retryable, retry_after, outcome in ANSWERS:
        fake_push.script(status, "no", headers)
        outcomes: list[str] = []
        notifier.count = outcomes.append
        with pytest.raises(DeliveryError) as failed:
            await notifier.notify(_page(recipients=("alice",)))
        assert failed.value.retryable is retryable, status
        assert failed.value.retry_after == retry_after, status
        assert outcomes == [outcome], status
        (row,) = await store.for_user("alice")
        assert row.endpoint == endpoint  # kept: only 404/410 remove it
        assert row.last_failure is not None
        assert f"HTTP {status}" in row.last_failure
        assert endpoint not in str(failed.value)  # the endpoint is a capability


async def test_the_push_service_refuses_a_key_the_browser_did_not_subscribe_with(
    storage, http, fake_push
):
    store = PushSubscriptions(storage)
    await _subscribe(store, fake_push, "alice")
    other = WebPushSettings(VapidKeys.generate(), "mailto:oncall@example.org")
    with pytest.raises(DeliveryError) as failed:
        await WebPushNotifier(other, store, http).notify(_page(recipients=("alice",)))
    assert not failed.value.retryable
    assert fake_push.refusals[0][0] == 403


async def test_an_unreachable_push_service_is_retried(storage, http, fake_push):
    store = PushSubscriptions(storage)
    await store.add(
        "alice",
        "https://127.0.0.1:9/push/x",
        fake_push.subscribe()["keys"]["p256dh"],
        fake_push.subscribe()["keys"]["auth"],
        "",
        T0,
    )
    with pytest.raises(DeliveryError) as failed:
        await WebPushNotifier(SETTINGS, store, http, timeout=5).notify(_page(recipients=("alice",)))
    assert failed.value.retryable


def test_a_resolve_carries_no_acknowledge_token():
    page = payload(_page(status="resolved"))
    assert page["token"] == ""
    assert str(page["title"]).startswith("RESOLVED ")


def test_vapid_settings_are_checked_at_start_up():
    pair = VapidKeys.generate()
    env = {"WEBPUSH_VAPID_PRIVATE_KEY": pair.private_key, "WEBPUSH_SUBJECT": "mailto:a@b.org"}
    assert read_webpush(EnvReader(env)).keys.public_key == pair.public_key  # type: ignore[union-attr]
    assert read_webpush(EnvReader({})) is None
    bad = [
        ({**env, "WEBPUSH_VAPID_PRIVATE_KEY": "not a key"}, "WEBPUSH_VAPID_PRIVATE_KEY"),
        ({**env, "WEBPUSH_VAPID_PRIVATE_KEY": "AAAA"}, "32-byte"),
        ({**env, "WEBPUSH_VAPID_PUBLIC_KEY": KEYS.public_key}, "does not belong"),
        ({**env, "WEBPUSH_SUBJECT": "oncall@example.org"}, "WEBPUSH_SUBJECT must be"),
        ({"WEBPUSH_VAPID_PRIVATE_KEY": pair.private_key}, "WEBPUSH_SUBJECT is required"),
        ({"WEBPUSH_SUBJECT": "mailto:a@b.org"}, "WEBPUSH_VAPID_PRIVATE_KEY is required"),
    ]
    for given, message in bad:
        with pytest.raises(ConfigError, match=message) as error:
            read_webpush(EnvReader(given))
        assert pair.private_key not in str(error.value)


def test_webpush_keys_prints_a_pair_the_bridge_accepts(capsys):
    assert main(["webpush-keys"]) == 0
    printed = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    env = {**printed, "WEBPUSH_SUBJECT": "https://status.example.org/contact"}
    settings = read_webpush(EnvReader(env))
    assert settings is not None
    assert settings.keys.public_key == printed["WEBPUSH_VAPID_PUBLIC_KEY"]


async def test_subscriptions_move_between_users_are_capped_and_migrate_again(storage, fake_push):
    store = PushSubscriptions(storage)
    sub = fake_push.subscribe()
    keys = sub["keys"]
    first = await store.add("alice", sub["endpoint"], keys["p256dh"], keys["auth"], "a", T0)
    again = await store.add("alice", sub["endpoint"], keys["p256dh"], keys["auth"], "b", T0)
    assert again.id == first.id  # the same browser subscribing again: one row
    assert again.user_agent == "b"
    moved = await store.add("bob", sub["endpoint"], keys["p256dh"], keys["auth"], "c", T0)
    assert moved.username == "bob"
    assert await store.for_user("alice") == []
    assert not await store.remove("alice", id=moved.id)  # not alice's to remove
    for n in range(MAX_SUBSCRIPTIONS_PER_USER - 1):
        await store.add("bob", f"https://push.example/{n}", keys["p256dh"], keys["auth"], "", T0)
    with pytest.raises(TooManySubscriptions):
        await store.add("bob", "https://push.example/over", keys["p256dh"], keys["auth"], "", T0)
    assert len(await store.for_user("bob")) == MAX_SUBSCRIPTIONS_PER_USER
    (migration,) = [m for m in load_migrations() if m.version == "0015_push_subscriptions"]
    async with storage.transaction() as tx:
        await tx.conn.execute(migration.sql)  # idempotent, like every migration
        secured = await tx.conn.fetchval(
            "SELECT relrowsecurity FROM pg_class WHERE relname = 'push_subscriptions'"
        )
    assert secured is True
    assert len(await store.for_user("bob")) == MAX_SUBSCRIPTIONS_PER_USER


def test_doctor_names_a_push_step_without_webpush(tmp_path):
    yaml = PUSH_ONCALL_YAML
    config = make_config("", oncall=write_oncall(tmp_path, yaml))
    checks = {c.name: c for c in oncall_checks(config)}
    assert not checks["on-call channels"].ok
    assert "push" in checks["on-call channels"].detail
    assert "WEBPUSH_*" in checks["on-call channels"].fix
    ready = replace(config, channels=replace(ChannelsConfig(), webpush=SETTINGS))
    assert "on-call channels" not in {c.name for c in oncall_checks(ready)}
