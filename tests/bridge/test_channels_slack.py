import asyncio
import dataclasses
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.channels.base import DeliveryError
from bridge.channels.ratelimit import IntervalLimiter
from bridge.channels.slack import SlackNotifier, render_message
from passiton_common.http_client import async_client
from tests.bridge.channel_support import make_alert, make_message
from tests.fakes.slack import validate_message


class ManualClock:
    """A clock that only moves when told; records every sleep asked of it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
async def http():
    async with async_client() as client:
        yield client


def notifier_for(fake, http, **kwargs) -> SlackNotifier:
    kwargs.setdefault("limiter", IntervalLimiter(0))
    return SlackNotifier(fake.webhook_url, http, **kwargs)


def texts(payload) -> list[str]:
    """Every text string in a Slack payload (fallback, headers, sections, context)."""
    found = [payload["text"]]

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload["blocks"])
    return found


async def test_one_message_per_group_listing_its_alerts(fake_slack, http):
    first = make_alert(summary="Payment failure rate 12% for org-123")
    second = make_alert(
        "WidgetLoadErrors",
        severity="high",
        fingerprint="ffff",
        summary="Widget load errors for org-9",
        organization_id="org-9",
        labels={"widget_id": "widget-456"},
    )
    await notifier_for(fake_slack, http).notify(make_message(first, second))

    assert len(fake_slack.messages) == 1
    payload = fake_slack.messages[0]
    assert fake_slack.requests[0].headers["content-type"] == "application/json"
    header, *sections, context = payload["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[FIRING:2] [CRITICAL] PaymentFailureRateHigh"},
    }
    assert len(sections) == 2
    one = sections[0]["text"]
    assert one["type"] == "mrkdwn"
    assert one["verbatim"] is True
    assert "*Payment failure rate 12% for org-123*" in one["text"]
    assert "12% of payments failed over the last 5 minutes (threshold 5%)." in one["text"]
    assert "severity=critical, category=payment, organization_id=org-123" in one["text"]
    assert "_Started:_ 2026-03-01 09:30:00 UTC" in one["text"]
    assert (
        "<http://prometheus.test:9090/graph?g0.expr=rate%28x%5B5m%5D%29&amp;g0.tab=1|Graph>"
        in one["text"]
    )
    assert "<https://docs.passiton.test/runbooks#payment-failure-rate-high|Runbook>" in one["text"]
    two = sections[1]["text"]["text"]
    assert "Widget load errors for org-9" in two
    assert "widget_id=widget-456" in two
    assert context["elements"][0]["text"] == (
        "2 alerts · receiver passiton-bridge · <http://alertmanager.test:9093|Alertmanager>"
    )
    assert payload["text"] == (
        "[FIRING:2] [CRITICAL] PaymentFailureRateHigh\n"
        "• Payment failure rate 12% for org-123\n"
        "• Widget load errors for org-9"
    )
    assert payload["unfurl_links"] is False


async def test_resolved_and_notice(fake_slack, http):
    alert = make_alert(status="resolved", ends_at=make_alert().starts_at.replace(hour=10))
    await notifier_for(fake_slack, http).notify(
        make_message(alert, notice="Flapping: fired and resolved 5 times in 1h")
    )
    header, notice, section, _ = fake_slack.messages[0]["blocks"]
    assert header["text"]["text"] == "[RESOLVED] [CRITICAL] PaymentFailureRateHigh"
    assert notice["text"]["text"] == ":warning: Flapping: fired and resolved 5 times in 1h"
    assert section["text"]["text"].startswith(":white_check_mark: *RESOLVED: Payment failure")
    assert "_Resolved:_ 2026-03-01 10:30:00 UTC" in section["text"]["text"]


INJECTIONS = [
    "<!channel> pay up",
    "<!here|here>",
    "<@U012AB3CD>",
    "<#C024BE7LR>",
    "<!subteam^SAZ94GDB8>",
    "<https://evil.example|click me>",
    "a & b <tag>",
]


async def test_label_values_cannot_mention_or_link(fake_slack, http):
    alert = make_alert(
        summary=INJECTIONS[0],
        description=" ".join(INJECTIONS),
        labels={f"l{i}": value for i, value in enumerate(INJECTIONS)},
        generator_url="javascript:alert(1)",
        runbook_url="https://ok.example/run|<!channel>",
    )
    message = make_message(alert, notice="<!everyone>")
    await notifier_for(fake_slack, http).notify(message)
    payload = fake_slack.messages[0]
    for text in texts(payload):
        assert "<!" not in text
        assert "<@" not in text
        assert "<#" not in text
        assert "<https://evil" not in text
        assert "javascript:" not in text
    section = payload["blocks"][2]["text"]["text"]
    assert "&lt;!channel&gt; pay up" in section
    assert "a &amp; b &lt;tag&gt;" in section
    # The runbook link survives with the dangerous part percent-encoded inside the URL.
    assert "<https://ok.example/run%7C%3C!channel%3E|Runbook>" in section
    assert "|Graph>" not in section


link_free_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",)), max_size=300
) | st.sampled_from(INJECTIONS)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(value=link_free_text, summary=link_free_text, notice=link_free_text)
def test_property_no_label_value_becomes_markup(value, summary, notice):
    alert = make_alert(
        summary=summary,
        description=value,
        labels={"detail": value, "alertname": value},
        generator_url="http://prometheus.test/graph",
        runbook_url="https://docs.test/rb",
    )
    payload = render_message(make_message(alert, notice=notice))
    allowed = {
        "http://prometheus.test/graph|Graph",
        "https://docs.test/rb|Runbook",
        "http://alertmanager.test:9093|Alertmanager",
    }
    for text in texts(payload):
        assert "<!" not in text
        assert "<@" not in text
        assert set(re.findall(r"<([^>]*)>", text)) <= allowed
    assert validate_message(json.loads(json.dumps(payload))) is None


async def test_within_slack_limits_for_huge_groups(fake_slack, http):
    alerts = [
        make_alert(
            f"Alert{i}",
            fingerprint=f"{i:016x}",
            summary=f"Summary {i} " + "&" * 400,
            description="<d> " * 2000,
            labels={f"label{j}": "v" * 50 for j in range(30)},
        )
        for i in range(120)
    ]
    message = make_message(*alerts)
    await notifier_for(fake_slack, http).notify(message)
    payload = fake_slack.messages[0]  # accepted by the fake, which checks Slack's limits
    blocks = payload["blocks"]
    assert len(blocks) == 50
    assert blocks[-2]["text"]["text"] == "_…and 73 more alerts._"
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert not re.search(r"&[a-z]{0,3}…", block["text"]["text"])  # no half entity
    assert len(payload["text"]) <= 3000
    assert len(blocks[0]["text"]["text"]) <= 150


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (400, "invalid_payload", False),
        (400, "no_text", False),
        (403, "action_prohibited", False),
        (404, "no_service", False),
        (404, "channel_not_found", False),
        (410, "channel_is_archived", False),
        (500, "rollup_error", True),
        (503, "service unavailable", True),
    ],
)
async def test_error_classes(fake_slack, http, status, body, retryable):
    fake_slack.script(status, body)
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_slack, http).notify(make_message())
    assert info.value.retryable is retryable
    assert body in str(info.value)
    assert f"HTTP {status}" in str(info.value)
    assert "XXXXXXXX" not in str(info.value)
    assert info.value.remaining is None
    assert fake_slack.messages == []


async def test_429_is_transient_with_retry_after_and_delays_the_next_message(fake_slack, http):
    clock = ManualClock()
    limiter = IntervalLimiter(1.0, clock=clock, sleep=clock.sleep)
    notifier = notifier_for(fake_slack, http, limiter=limiter)
    fake_slack.script(429, "rate_limited", {"Retry-After": "30"})
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is True
    assert info.value.retry_after == 30
    await notifier.notify(make_message())
    assert clock.sleeps == [30.0]
    assert len(fake_slack.messages) == 1


async def test_at_most_one_message_a_second_per_webhook(fake_slack, http):
    clock = ManualClock()
    limiter = IntervalLimiter(1.0, clock=clock, sleep=clock.sleep)
    notifier = notifier_for(fake_slack, http, limiter=limiter)
    for _ in range(3):
        await notifier.notify(make_message())
    other = make_message(recipients=(fake_slack.base_url + "/services/T1/B1/other",))
    with pytest.raises(DeliveryError):  # the fake knows only one webhook: 404 no_service
        await notifier.notify(other)
    assert clock.sleeps == [1.0, 2.0]  # the other URL did not wait behind the first
    clock.now += 10
    await notifier.notify(make_message())
    assert clock.sleeps == [1.0, 2.0]
    assert len(fake_slack.messages) == 4


async def test_interval_limiter_spaces_concurrent_callers():

    clock = ManualClock()
    limiter = IntervalLimiter(0.5, clock=clock, sleep=clock.sleep)
    waits = await asyncio.gather(*(limiter.acquire("k") for _ in range(4)))
    assert waits == [0.0, 0.5, 1.0, 1.5]
    assert await limiter.acquire("other") == 0.0


async def test_timeout_and_connection_refused_are_transient(fake_slack, http):
    fake_slack.script(200, "ok", delay=5)
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_slack, http, timeout=0.2).notify(make_message())
    assert info.value.retryable is True
    assert "timeout" in str(info.value)

    url = fake_slack.webhook_url
    await fake_slack.stop()
    with pytest.raises(DeliveryError) as info:
        await SlackNotifier(url, http, limiter=IntervalLimiter(0)).notify(make_message())
    assert info.value.retryable is True


async def test_recipients_override_and_partial_failure(fake_slack, http):
    bad = fake_slack.base_url + "/services/T9/B9/gone"
    message = make_message(recipients=(fake_slack.webhook_url, bad))
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_slack, http).notify(message)
    assert info.value.retryable is False
    assert info.value.remaining == (bad,)
    assert "1/2 delivered" in str(info.value)
    assert "webhook 127.0.0.1/…: HTTP 404: no_service" in str(info.value)
    assert "gone" not in str(info.value)  # the URL path is the credential
    assert [r.path for r in fake_slack.requests] == [
        "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "/services/T9/B9/gone",
    ]


async def test_owned_client_and_repr_hides_the_webhook(fake_slack):
    notifier = SlackNotifier(fake_slack.webhook_url, limiter=IntervalLimiter(0))
    await notifier.notify(make_message())
    await notifier.aclose()
    assert "XXXX" not in repr(notifier)
    assert len(fake_slack.messages) == 1


async def test_mentions_are_a_line_at_the_top_and_nothing_else_mentions(fake_slack, http):
    message = dataclasses.replace(
        make_message(make_alert(summary="<@U0EVE> paged")),
        mentions=("U0ALICE", "<!channel>", "W012ABC", "u0lower", "U0ALICE", "C0CHANNEL"),
    )
    assert message.mentions == ("U0ALICE", "W012ABC")
    await notifier_for(fake_slack, http).notify(message)
    payload = fake_slack.messages[0]
    first, header = payload["blocks"][:2]
    assert first["text"]["text"] == "<@U0ALICE> <@W012ABC>"
    assert header["type"] == "header"
    assert payload["text"].startswith("<@U0ALICE> <@W012ABC>\n[FIRING:1]")
    mentioned = set(re.findall(r"<@([A-Z0-9]+)>", json.dumps(payload)))
    assert mentioned == {"U0ALICE", "W012ABC"}  # the summary's "<@U0EVE>" stayed text
