import pytest

from bridge.channels.base import DeliveryError
from bridge.channels.pagerduty import PagerDutyNotifier, dedup_key
from passiton_common.http_client import async_client
from tests.bridge.channel_support import STARTS_AT, make_alert, make_message

ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters, like a real integration key


@pytest.fixture
async def http():
    async with async_client() as client:
        yield client


@pytest.fixture
def notifier(fake_pagerduty, http):
    return PagerDutyNotifier(ROUTING_KEY, fake_pagerduty.events_url, http, timeout=2)


async def test_one_trigger_event_per_alert_with_mapped_severity(fake_pagerduty, notifier):
    alerts = [
        make_alert(f"A{sev}", severity=sev, fingerprint=f"fp-{sev}")
        for sev in ("critical", "high", "medium", "low")
    ]
    await notifier.notify(make_message(*alerts))
    events = fake_pagerduty.events
    assert [e["payload"]["severity"] for e in events] == ["critical", "error", "warning", "info"]
    assert len({e["dedup_key"] for e in events}) == 4
    first = events[0]
    assert first["routing_key"] == ROUTING_KEY
    assert first["event_action"] == "trigger"
    assert first["dedup_key"] == dedup_key(alerts[0])
    payload = first["payload"]
    assert payload["summary"] == "Payment failure rate 12% for org-123"
    assert payload["source"] == "passiton-monitoring"
    assert payload["timestamp"] == "2026-03-01T09:30:00Z"
    assert payload["component"] == "payment"
    assert payload["group"] == "org-123"
    assert payload["class"] == "Acritical"
    assert payload["custom_details"]["labels"]["organization_id"] == "org-123"
    assert payload["custom_details"]["description"].startswith("12% of payments failed")
    assert payload["custom_details"]["fingerprint"] == "fp-critical"
    assert first["links"] == [
        {
            "href": "http://prometheus.test:9090/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1",
            "text": "Prometheus graph",
        },
        {
            "href": "https://docs.passiton.test/runbooks#payment-failure-rate-high",
            "text": "Runbook",
        },
    ]
    assert first["client_url"] == "http://alertmanager.test:9093"
    assert set(fake_pagerduty.incidents.values()) == {"triggered"}


async def test_resolve_uses_the_same_dedup_key(fake_pagerduty, notifier):
    firing = make_alert(fingerprint="abc")
    await notifier.notify(make_message(firing))
    resolved = make_alert(fingerprint="abc", status="resolved", ends_at=STARTS_AT.replace(hour=11))
    await notifier.notify(make_message(resolved))
    trigger, resolve = fake_pagerduty.events
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "dedup_key": trigger["dedup_key"],
        "event_action": "resolve",
    }
    assert fake_pagerduty.incidents == {trigger["dedup_key"]: "resolved"}


def test_dedup_key_is_stable_per_fingerprint_and_start():
    a = make_alert(fingerprint="abc")
    assert dedup_key(a) == dedup_key(make_alert(fingerprint="abc", status="resolved"))
    assert dedup_key(a) == dedup_key(
        make_alert(fingerprint="abc", starts_at=STARTS_AT.replace(tzinfo=None))
    )
    assert dedup_key(a) != dedup_key(make_alert(fingerprint="abd"))
    assert dedup_key(a) != dedup_key(
        make_alert(fingerprint="abc", starts_at=STARTS_AT.replace(hour=12))
    )
    assert len(dedup_key(a)) <= 255


async def test_each_alert_resolves_on_its_own(fake_pagerduty, notifier):
    one, two = make_alert(fingerprint="one"), make_alert(fingerprint="two")
    await notifier.notify(make_message(one, two))
    await notifier.notify(make_message(make_alert(fingerprint="one", status="resolved")))
    assert fake_pagerduty.incidents == {dedup_key(one): "resolved", dedup_key(two): "triggered"}


async def test_bad_links_are_left_out_and_summary_truncated(fake_pagerduty, notifier):
    alert = make_alert(summary="x" * 5000, generator_url="ftp://nope", runbook_url="")
    await notifier.notify(make_message(alert))
    event = fake_pagerduty.events[0]
    assert "links" not in event
    assert len(event["payload"]["summary"]) == 1024


async def test_400_is_permanent_with_pagerduty_reason(fake_pagerduty, http):
    short_key = PagerDutyNotifier("too-short", fake_pagerduty.events_url, http)
    with pytest.raises(DeliveryError) as info:
        await short_key.notify(make_message())
    assert info.value.retryable is False
    assert "HTTP 400" in str(info.value)
    assert "Length of 'routing_key' is incorrect" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "headers", "retryable", "retry_after"),
    [
        (
            429,
            {
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly.",
            },
            {},
            True,
            None,
        ),
        (429, "", {"Retry-After": "12"}, True, 12),
        (500, "", {}, True, None),
        (502, "bad gateway", {}, True, None),
        (
            400,
            {"status": "invalid event", "message": "Event object is invalid", "errors": ["x"]},
            {},
            False,
            None,
        ),
        (404, "not found", {}, False, None),
    ],
)
async def test_error_classes(
    fake_pagerduty, notifier, status, body, headers, retryable, retry_after
):
    fake_pagerduty.script(status, body, headers)
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is retryable
    assert info.value.retry_after == retry_after
    assert f"HTTP {status}" in str(info.value)


async def test_partial_failure_is_retryable_and_resending_is_idempotent(fake_pagerduty, notifier):
    alerts = [make_alert(fingerprint="one"), make_alert(fingerprint="two")]
    fake_pagerduty.script(
        202, {"status": "success", "message": "Event processed", "dedup_key": "x"}
    )
    fake_pagerduty.script(503, "unavailable")
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message(*alerts))
    assert info.value.retryable is True
    assert "1/2 events accepted" in str(info.value)
    await notifier.notify(make_message(*alerts))  # the retry re-sends both
    assert fake_pagerduty.incidents == {dedup_key(a): "triggered" for a in alerts}


async def test_timeout_and_refused_connection_are_transient(fake_pagerduty, http):
    fake_pagerduty.script(202, {}, delay=5)
    notifier = PagerDutyNotifier(ROUTING_KEY, fake_pagerduty.events_url, http, timeout=0.2)
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is True
    await fake_pagerduty.stop()
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is True


async def test_message_recipients_are_routing_keys(fake_pagerduty, notifier):
    other = "S0123456789abcdef0123456789abcde"
    await notifier.notify(make_message(make_alert(), recipients=(other,)))
    assert [e["routing_key"] for e in fake_pagerduty.events] == [other]
