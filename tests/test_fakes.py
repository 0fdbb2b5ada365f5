"""The fakes themselves: protocol answers, scripting, and the threaded mode for other harnesses."""

import smtplib
from email.message import EmailMessage

from passiton_common.http_client import async_client
from tests import plain_http
from tests.fakes import FakePagerDuty, FakeSlack, FakeSMTP, FakeTwilio
from tests.fakes.twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

KEY = "R0123456789abcdef0123456789abcde"


async def test_slack_answers_like_slack(fake_slack):
    async with async_client() as http:
        ok = await http.post(fake_slack.webhook_url, json={"text": "hi"})
        no_text = await http.post(fake_slack.webhook_url, json={"username": "x"})
        bad_json = await http.post(fake_slack.webhook_url, content=b"{nope")
        too_many = await http.post(
            fake_slack.webhook_url,
            json={"blocks": [{"type": "divider"}] * 51},
        )
        wrong_hook = await http.post(fake_slack.base_url + "/services/A/B/C", json={"text": "x"})
        fake_slack.script(429, "rate_limited", {"Retry-After": "2"})
        limited = await http.post(fake_slack.webhook_url, json={"text": "hi"})
    assert (ok.status_code, ok.text) == (200, "ok")
    assert (no_text.status_code, no_text.text) == (400, "no_text")
    assert (bad_json.status_code, bad_json.text) == (400, "invalid_payload")
    assert (too_many.status_code, too_many.text) == (400, "invalid_blocks")
    assert (wrong_hook.status_code, wrong_hook.text) == (404, "no_service")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    assert fake_slack.messages == [{"text": "hi"}]
    assert len(fake_slack.requests) == 6


async def test_pagerduty_answers_like_the_events_api(fake_pagerduty):
    async with async_client() as http:
        ok = await http.post(
            fake_pagerduty.events_url,
            json={
                "routing_key": KEY,
                "event_action": "trigger",
                "dedup_key": "k1",
                "payload": {"summary": "s", "source": "src", "severity": "error"},
            },
        )
        invalid = await http.post(
            fake_pagerduty.events_url,
            json={"routing_key": KEY, "event_action": "trigger", "payload": {"summary": "s"}},
        )
        resolve = await http.post(
            fake_pagerduty.events_url,
            json={"routing_key": KEY, "event_action": "resolve", "dedup_key": "k1"},
        )
    assert ok.status_code == 202
    assert ok.json() == {"status": "success", "message": "Event processed", "dedup_key": "k1"}
    assert invalid.status_code == 400
    body = invalid.json()
    assert body["status"] == "invalid event"
    assert body["message"] == "Event object is invalid"
    assert "'payload.source' is missing or blank" in body["errors"]
    assert resolve.status_code == 202
    assert fake_pagerduty.incidents == {"k1": "resolved"}


async def test_twilio_checks_auth_and_numbers(fake_twilio):
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json"
    auth = (TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)
    form = {"To": "+14155550111", "From": "+14155550100", "Body": "hello"}
    async with async_client() as http:
        created = await http.post(url, data=form, auth=auth)
        unauthorized = await http.post(url, data=form, auth=(TEST_ACCOUNT_SID, "x"))
        bad_to = await http.post(url, data={**form, "To": "555"}, auth=auth)
        too_long = await http.post(url, data={**form, "Body": "x" * 1601}, auth=auth)
    assert created.status_code == 201
    resource = created.json()
    assert resource["sid"].startswith("SM")
    assert resource["to"] == "+14155550111"
    assert resource["status"] == "queued"
    assert unauthorized.status_code == 401
    assert unauthorized.json()["code"] == 20003
    assert bad_to.status_code == 400
    assert bad_to.json() == {
        "code": 21211,
        "message": "The 'To' number 555 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    assert too_long.json()["code"] == 21617
    assert fake_twilio.messages == [form]


async def test_scripted_answers_come_in_order_then_normal_behaviour(fake_slack):
    fake_slack.script(500, "boom")
    fake_slack.script(503, "down", times=2)
    async with async_client() as http:
        codes = [
            (await http.post(fake_slack.webhook_url, json={"text": "x"})).status_code
            for _ in range(4)
        ]
    assert codes == [500, 503, 503, 200]


def test_threaded_mode_for_synchronous_harnesses():
    slack = FakeSlack()
    pagerduty = FakePagerDuty()
    twilio = FakeTwilio()
    smtp = FakeSMTP()
    try:
        slack.start_in_thread()
        pagerduty.start_in_thread()
        twilio.start_in_thread()
        host, port = smtp.start_in_thread()
        assert plain_http.post(slack.webhook_url, json={"text": "sync"}).text == "ok"
        assert plain_http.post(pagerduty.events_url, json={}).status_code == 400
        mail = EmailMessage()
        mail["Subject"] = "hello"
        mail["From"] = "a@b.test"
        mail["To"] = "c@d.test"
        mail.set_content("body")
        with smtplib.SMTP(host, port) as client:
            client.send_message(mail)
        assert slack.messages == [{"text": "sync"}]
        assert smtp.messages[0].message["Subject"] == "hello"
        assert smtp.messages[0].rcpt_tos == ("c@d.test",)
    finally:
        for server in (slack, pagerduty, twilio, smtp):
            server.stop_thread()
