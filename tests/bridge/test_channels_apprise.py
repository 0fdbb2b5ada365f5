"""The Apprise channel against local servers over real HTTP: a JSON/form webhook receiver and an
ntfy server, answering 200, 500, 429, 404 and ntfy's error bodies.

The fakes run in the test's event loop: a send made on the loop (Apprise is synchronous) would
block the server it waits for, so every delivery here that succeeds also shows that Apprise runs
off the loop."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from bridge.channels.apprise import AppriseNotifier, show_url, split_urls
from bridge.channels.base import DeliveryError
from bridge.channels.config import ChannelsConfig, ConfigError
from bridge.model import Message
from tests.bridge.channel_support import make_alert, make_message
from tests.fakes.notify_targets import FakeNtfy, FakeWebhook


@pytest.fixture
async def hook() -> AsyncIterator[FakeWebhook]:
    async with FakeWebhook() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def ntfy() -> AsyncIterator[FakeNtfy]:
    async with FakeNtfy() as server:
        yield server  # type: ignore[misc]


def json_url(server: FakeWebhook, path: str = "hook", auth: str = "") -> str:
    return f"json://{auth}{server.base_url.removeprefix('http://')}/{path}"


def ntfy_url(server: FakeNtfy, topic: str) -> str:
    return f"ntfy://{server.base_url.removeprefix('http://')}/{topic}"


def critical(**changes: object) -> Message:
    base = make_message(make_alert("PaymentProcessingFailures", severity="critical"))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def failure(notifier: AppriseNotifier, msg: Message) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await notifier.notify(msg)
    return caught.value


async def test_a_json_webhook_gets_the_title_and_the_text(hook):
    url = json_url(hook)
    await AppriseNotifier().notify(critical(recipients=(url,), notice="You are on call."))
    [(path, fields)] = hook.received
    assert path == "/hook"
    assert fields["title"].startswith("[FIRING:1] [CRITICAL] PaymentProcessingFailures")
    assert "You are on call." in fields["message"]
    assert fields["type"] == "failure"  # a critical page; a resolve is "success"
    await AppriseNotifier().notify(critical(recipients=(url,), status="resolved"))
    assert hook.received[-1][1]["type"] == "success"


async def test_a_form_webhook_and_an_ntfy_topic(hook, ntfy):
    form = f"form://{hook.base_url.removeprefix('http://')}/form"
    urls = (form, ntfy_url(ntfy, "passiton-alice"))
    await AppriseNotifier().notify(critical(recipients=urls))
    [(path, fields)] = hook.received
    assert path == "/form"
    assert "PaymentProcessingFailures" in fields["title"]
    [published] = ntfy.messages
    assert published["topic"] == "passiton-alice"
    assert "PaymentProcessingFailures" in published["title"]


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (404, False), (400, False)]
)
async def test_a_refusal_is_classified_by_its_status(hook, status, retryable):
    hook.script(status, "no")
    error = await failure(AppriseNotifier(), critical(recipients=(json_url(hook),)))
    assert error.retryable is retryable
    assert f"HTTP {status}" in str(error)
    assert error.remaining is None  # the only URL: a retry sends to it again


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (500, True), (403, False)])
async def test_ntfys_error_codes_are_its_http_statuses(ntfy, status, retryable):
    ntfy.script_error(status)
    error = await failure(AppriseNotifier(), critical(recipients=(ntfy_url(ntfy, "t"),)))
    assert error.retryable is retryable
    assert f"HTTP {status}" in str(error)


async def test_one_url_failing_leaves_only_that_one_owed(hook, ntfy):
    failing = json_url(hook, "down")
    fine = ntfy_url(ntfy, "ok-topic")
    hook.script(500, "down")
    error = await failure(AppriseNotifier(), critical(recipients=(fine, failing)))
    assert error.retryable
    assert error.remaining == (failing,)
    assert len(ntfy.messages) == 1
    assert "1/2 delivered" in str(error)


async def test_an_unusable_url_is_permanent_and_never_shown(hook):
    bad = "nosuchservice://user:hunter2-secret@example.org/topic-secret"
    error = await failure(AppriseNotifier(), critical(recipients=(bad, json_url(hook))))
    assert not error.retryable
    assert error.remaining == (bad,)
    assert "not a valid Apprise URL" in str(error)
    assert "hunter2" not in str(error)
    assert "topic-secret" not in str(error)
    assert show_url(bad) in str(error)
    assert len(hook.received) == 1  # the other URL got it


async def test_a_urls_credentials_stay_out_of_the_error(hook):
    url = json_url(hook, "path-secret-7f", auth="user:pw-secret-3c@")
    hook.script(500, "boom")
    error = await failure(AppriseNotifier(), critical(recipients=(url,)))
    text = str(error)
    assert "pw-secret-3c" not in text
    assert "path-secret-7f" not in text
    assert hook.base_url.removeprefix("http://") not in text
    assert text.endswith("refused, HTTP 500")
    assert hook.requests[0].headers["authorization"].startswith("Basic ")


async def test_a_service_that_does_not_answer_in_time_is_retried(hook):
    hook.script(200, "late", delay=30)
    error = await failure(AppriseNotifier(timeout=0.5), critical(recipients=(json_url(hook),)))
    assert error.retryable


async def test_without_recipients_the_severitys_urls(hook):
    notifier = AppriseNotifier({"critical": (json_url(hook, "critical"),)})
    await notifier.notify(critical())
    assert [path for path, _ in hook.received] == ["/critical"]
    low = make_message(make_alert("Quiet", severity="low"))
    error = await failure(notifier, low)
    assert not error.retryable
    assert "APPRISE_URLS_LOW" in str(error)


def test_urls_are_split_on_commas_and_spaces_but_not_inside_a_url() -> None:
    text = "ntfys://ntfy.example.org/a, json://h/x\n mailto://u:p@example.org?to=a@x.org,b@y.org"
    assert split_urls(text) == (
        "ntfys://ntfy.example.org/a",
        "json://h/x",
        "mailto://u:p@example.org?to=a@x.org,b@y.org",
    )


def test_the_severity_variables_are_parsed_and_checked_at_start_up() -> None:
    config = ChannelsConfig.from_env(
        {
            "APPRISE_URLS_CRITICAL": "ntfys://ntfy.example.org/crit json://hooks.example.org/x",
            "APPRISE_URLS_LOW": " ",
        }
    )
    assert config.apprise is not None
    assert config.apprise.urls == {
        "critical": ("ntfys://ntfy.example.org/crit", "json://hooks.example.org/x")
    }
    assert "apprise" in config.enabled
    assert "ntfy.example.org" not in repr(config)
    assert ChannelsConfig.from_env({}).apprise is None

    secret = "nosuchservice://token-9d1e@example.org"
    with pytest.raises(ConfigError) as caught:
        ChannelsConfig.from_env({"APPRISE_URLS_HIGH": f"ntfys://ntfy.example.org/h, {secret}"})
    assert str(caught.value).startswith("APPRISE_URLS_HIGH: URL 2 of 2 is not an Apprise URL")
    assert "token-9d1e" not in str(caught.value)
