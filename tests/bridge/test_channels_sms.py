import base64
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.channels.base import DeliveryError
from bridge.channels.sms import MAX_GSM7, MAX_UCS2, SmsNotifier, render_sms
from bridge.channels.text import is_gsm7
from tests.bridge.channel_support import make_alert, make_message
from tests.fakes.twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

FROM = "+14155550100"
ALICE = "+14155550111"
BOB = "+447700900222"


@pytest.fixture
async def notifier(fake_twilio):
    sms = SmsNotifier(
        TEST_ACCOUNT_SID,
        TEST_AUTH_TOKEN,
        FROM,
        (ALICE, BOB),
        api_url=fake_twilio.base_url,
        timeout=2,
    )
    yield sms
    await sms.aclose()


async def test_one_sms_per_recipient_through_the_twilio_client(fake_twilio, notifier):
    await notifier.notify(
        make_message(
            make_alert(), make_alert("WidgetDown", fingerprint="f2", summary="Widget down")
        )
    )
    assert [m["To"] for m in fake_twilio.messages] == [ALICE, BOB]
    request = fake_twilio.requests[0]
    assert request.path == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{TEST_ACCOUNT_SID}:{TEST_AUTH_TOKEN}".encode()).decode()
    )
    assert "twilio-python" in request.headers["user-agent"]
    message = fake_twilio.messages[0]
    assert message["From"] == FROM
    assert message["Body"] == (
        "[FIRING:2] [CRITICAL] PaymentFailureRateHigh\n"
        "- Payment failure rate 12% for org-123\n"
        "- Widget down (org-123)"
    )


async def test_message_recipients_override_defaults(fake_twilio, notifier):
    await notifier.notify(make_message(recipients=("+15005550006",)))
    assert [m["To"] for m in fake_twilio.messages] == ["+15005550006"]


def test_long_gsm_body_within_1600_and_says_how_many_were_left_out():
    alerts = [
        make_alert(f"Alert{i}", fingerprint=str(i), summary=f"Alert number {i} " + "x" * 150)
        for i in range(40)
    ]
    body = render_sms(make_message(*alerts))
    assert is_gsm7(body)
    assert len(body) <= MAX_GSM7
    shown = [line for line in body.splitlines() if line.startswith("- Alert number")]
    assert body.splitlines()[-1] == f"(+{40 - len(shown)} more)"
    assert len(shown) > 5


def test_non_gsm_body_is_kept_shorter():
    alerts = [
        make_alert(f"A{i}", fingerprint=str(i), summary=f"Zahlungsfehler ✓ {i} " + "ü" * 60)
        for i in range(40)
    ]
    body = render_sms(make_message(*alerts))
    assert not is_gsm7(body)
    assert len(body) <= MAX_UCS2
    short = render_sms(make_message(make_alert(summary="Paiement échoué ✓")))
    assert "Paiement échoué ✓" in short


def test_single_huge_line_is_truncated():
    body = render_sms(make_message(make_alert(summary="y" * 5000), notice="n" * 5000))
    assert len(body) <= MAX_GSM7
    _title, notice, alert = body.splitlines()
    assert notice == "n" * 297 + "..."
    assert alert == "- " + "y" * 197 + "..."


def test_gsm7_check():
    assert is_gsm7("Hello @ £5 {ok} €")
    assert not is_gsm7("emoji 🔥")
    assert not is_gsm7("…")


@pytest.mark.parametrize(
    ("status", "code", "headers", "retryable", "retry_after"),
    [
        (429, 20429, {"Retry-After": "9"}, True, 9),
        (429, 20429, {}, True, None),
        (500, 20500, {}, True, None),
        (503, 20503, {}, True, None),
        (400, 21211, {}, False, None),
        (400, 21610, {}, False, None),
        (400, 21614, {}, False, None),
        (400, 21408, {}, False, None),
        (401, 20003, {}, False, None),
    ],
)
async def test_error_classes(fake_twilio, notifier, status, code, headers, retryable, retry_after):
    fake_twilio.script(
        status,
        {"code": code, "message": f"error {code}", "more_info": "", "status": status},
        headers,
        times=2,
    )
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is retryable
    assert info.value.retry_after == retry_after
    assert f"Twilio error {code}" in str(info.value)


async def test_5xx_without_json_is_transient(fake_twilio, notifier):
    fake_twilio.script(502, "<html>Bad Gateway</html>", times=2)
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is True


async def test_wrong_credentials_are_permanent(fake_twilio):
    sms = SmsNotifier(TEST_ACCOUNT_SID, "wrong", FROM, (ALICE,), api_url=fake_twilio.base_url)
    try:
        with pytest.raises(DeliveryError) as info:
            await sms.notify(make_message())
    finally:
        await sms.aclose()
    assert info.value.retryable is False
    assert "20003" in str(info.value)


async def test_one_recipient_failing_permanently_does_not_stop_the_others(fake_twilio, notifier):
    fake_twilio.fail_to(ALICE, 400, 21610, "Attempt to send to unsubscribed recipient")
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert [m["To"] for m in fake_twilio.messages] == [BOB]
    assert info.value.retryable is False
    assert info.value.remaining == (ALICE,)
    assert "1/2 delivered" in str(info.value)


async def test_transient_failure_names_only_the_recipients_still_owed(fake_twilio, notifier):
    fake_twilio.fail_to(BOB, 429, 20429, "Too Many Requests", {"Retry-After": "4"})
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is True
    assert info.value.retry_after == 4
    assert info.value.remaining == (BOB,)
    # The worker retries with the remaining recipients only: Alice is not texted twice.
    fake_twilio.succeed_to(BOB)
    await notifier.notify(replace(make_message(), recipients=info.value.remaining))
    assert [m["To"] for m in fake_twilio.messages] == [ALICE, BOB]


async def test_invalid_override_number_is_permanent_without_a_request(fake_twilio, notifier):
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message(recipients=("0044 7700 900",)))
    assert info.value.retryable is False
    assert fake_twilio.requests == []


async def test_timeout_and_refused_connection_are_transient(fake_twilio, notifier):
    fake_twilio.script(201, {}, delay=5, times=2)
    notifier.http_client.timeout = 0.2
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is True
    await fake_twilio.stop()
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is True
    assert info.value.remaining is None  # nobody reached: a retry sends to everyone


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    summaries=st.lists(st.text(max_size=400), min_size=1, max_size=30),
    notice=st.text(max_size=300),
)
def test_property_body_within_limits(summaries, notice):
    alerts = [make_alert(f"A{i}", fingerprint=str(i), summary=s) for i, s in enumerate(summaries)]
    body = render_sms(make_message(*alerts, notice=notice))
    assert body
    assert len(body) <= (MAX_GSM7 if is_gsm7(body) else MAX_UCS2)
    assert body.startswith(make_message(*alerts).title[:20])


async def test_twilio_edge_in_the_environment_does_not_move_requests(fake_twilio, monkeypatch):
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    sms = SmsNotifier(
        TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, FROM, (ALICE,), api_url=fake_twilio.base_url
    )
    try:
        await sms.notify(make_message())
    finally:
        await sms.aclose()
    assert [m["To"] for m in fake_twilio.messages] == [ALICE]
