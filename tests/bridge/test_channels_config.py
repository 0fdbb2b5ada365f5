import pytest

from bridge.channels.config import (
    DEFAULT_PAGERDUTY_EVENTS_URL,
    DEFAULT_TWILIO_API_URL,
    ChannelsConfig,
)
from bridge.channels.console import ConsoleNotifier
from bridge.channels.email import EmailNotifier
from bridge.channels.pagerduty import PagerDutyNotifier
from bridge.channels.registry import aclose_notifiers, build_notifiers
from bridge.channels.slack import SlackNotifier
from bridge.channels.sms import SmsNotifier
from passiton_common.http_client import async_client
from tests.bridge.channel_support import make_message
from tests.fakes.twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

FULL = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B1/secretpart",
    "ALERT_EMAIL_RECIPIENTS": "ops@passiton.test, oncall@passiton.test",
    "ALERT_EMAIL_FROM": "PassItOn <alerts@passiton.test>",
    "SMTP_HOST": "smtp.passiton.test",
    "SMTP_USERNAME": "mailer",
    "SMTP_PASSWORD": "smtp-secret",
    "SMTP_TLS": "TLS",
    "ALERT_SMS_RECIPIENTS": "+14155550111;+447700900222",
    "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": "twilio-secret",
    "TWILIO_PHONE_NUMBER": "+14155550100",
    "PAGERDUTY_INTEGRATION_KEY": "pd-secret-0123456789abcdef012345",
    "PROMETHEUS_URL": "http://prometheus:9090/",
}


def test_nothing_configured_means_console_only():
    config = ChannelsConfig.from_env({})
    assert config.enabled == ("console",)
    assert config.slack is config.email is config.sms is config.pagerduty is None
    notifiers = build_notifiers(config)
    assert list(notifiers) == ["console"]
    assert isinstance(notifiers["console"], ConsoleNotifier)


def test_empty_values_count_as_unset():
    assert ChannelsConfig.from_env({"SLACK_WEBHOOK_URL": "  ", "SMTP_HOST": ""}).enabled == (
        "console",
    )


def test_everything_configured():
    config = ChannelsConfig.from_env(FULL)
    assert config.enabled == ("slack", "email", "sms", "pagerduty")
    assert config.email is not None
    assert config.email.recipients == ("ops@passiton.test", "oncall@passiton.test")
    assert config.email.tls == "tls"
    assert config.email.port == 465
    assert config.email.sender == "PassItOn <alerts@passiton.test>"
    assert config.sms is not None
    assert config.sms.recipients == ("+14155550111", "+447700900222")
    assert config.sms.api_url == DEFAULT_TWILIO_API_URL
    assert config.pagerduty is not None
    assert config.pagerduty.events_url == DEFAULT_PAGERDUTY_EVENTS_URL
    assert config.prometheus_url == "http://prometheus:9090"


def test_secrets_never_in_repr():
    config = ChannelsConfig.from_env(FULL)
    text = repr(config)
    for secret in ("secretpart", "smtp-secret", "twilio-secret", "pd-secret"):
        assert secret not in text
    assert "smtp.passiton.test" in text


async def test_registry_builds_every_configured_channel():
    async with async_client() as http:
        notifiers = build_notifiers(ChannelsConfig.from_env(FULL), http)
        assert {name: type(n) for name, n in notifiers.items()} == {
            "slack": SlackNotifier,
            "email": EmailNotifier,
            "sms": SmsNotifier,
            "pagerduty": PagerDutyNotifier,
        }
        assert all(n.name == name for name, n in notifiers.items())
        for notifier in notifiers.values():
            for secret in ("secretpart", "smtp-secret", "twilio-secret", "pd-secret"):
                assert secret not in repr(notifier)
        await aclose_notifiers(notifiers)
        assert not http.is_closed  # the caller's client stays the caller's


@pytest.mark.parametrize("value", ["starttls", "tls", "none"])
def test_smtp_tls_values_and_default_ports(value):
    config = ChannelsConfig.from_env(
        {"SMTP_HOST": "mx", "ALERT_EMAIL_RECIPIENTS": "a@b.test", "SMTP_TLS": value}
    )
    assert config.email is not None
    assert config.email.tls == value
    assert config.email.port == {"starttls": 587, "tls": 465, "none": 25}[value]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SLACK_WEBHOOK_URL": "hooks.slack.com/services/x"}, "SLACK_WEBHOOK_URL"),
        ({"SLACK_WEBHOOK_URL": "ftp://hooks.slack.com/x"}, "SLACK_WEBHOOK_URL"),
        ({"SMTP_HOST": "mx"}, "ALERT_EMAIL_RECIPIENTS"),
        ({"ALERT_EMAIL_RECIPIENTS": "a@b.test"}, "SMTP_HOST"),
        ({"SMTP_HOST": "mx", "ALERT_EMAIL_RECIPIENTS": "nobody"}, "ALERT_EMAIL_RECIPIENTS"),
        ({"SMTP_HOST": "mx", "ALERT_EMAIL_RECIPIENTS": "a@b.test", "SMTP_TLS": "ssl"}, "SMTP_TLS"),
        ({"SMTP_HOST": "mx", "ALERT_EMAIL_RECIPIENTS": "a@b.test", "SMTP_PORT": "x"}, "SMTP_PORT"),
        (
            {"SMTP_HOST": "mx", "ALERT_EMAIL_RECIPIENTS": "a@b.test", "SMTP_PORT": "70000"},
            "SMTP_PORT",
        ),
        (
            {"SMTP_HOST": "mx", "ALERT_EMAIL_RECIPIENTS": "a@b.test", "SMTP_USERNAME": "u"},
            "SMTP_PASSWORD",
        ),
        (
            {"SMTP_HOST": "mx", "ALERT_EMAIL_RECIPIENTS": "a@b.test", "ALERT_EMAIL_FROM": "me"},
            "ALERT_EMAIL_FROM",
        ),
        ({"ALERT_SMS_RECIPIENTS": "+14155550111"}, "TWILIO_ACCOUNT_SID"),
        (
            {
                "TWILIO_ACCOUNT_SID": "ACnope",
                "TWILIO_AUTH_TOKEN": "t",
                "TWILIO_PHONE_NUMBER": "+1415555",
                "ALERT_SMS_RECIPIENTS": "+14155550111",
            },
            "TWILIO_ACCOUNT_SID",
        ),
        (
            {
                "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": "t",
                "TWILIO_PHONE_NUMBER": "4155550100",
                "ALERT_SMS_RECIPIENTS": "+14155550111",
            },
            "TWILIO_PHONE_NUMBER",
        ),
        (
            {
                "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": "t",
                "TWILIO_PHONE_NUMBER": "+14155550100",
                "ALERT_SMS_RECIPIENTS": "+14155550111,07700 900222",
            },
            "ALERT_SMS_RECIPIENTS",
        ),
        (
            {
                "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": "t",
                "TWILIO_PHONE_NUMBER": "+14155550100",
                "ALERT_SMS_RECIPIENTS": "+14155550111",
                "TWILIO_API_URL": "twilio.local",
            },
            "TWILIO_API_URL",
        ),
        ({"PAGERDUTY_EVENTS_URL": "http://pd.test/v2/enqueue"}, "PAGERDUTY_INTEGRATION_KEY"),
        (
            {"PAGERDUTY_INTEGRATION_KEY": "k", "PAGERDUTY_EVENTS_URL": "not a url"},
            "PAGERDUTY_EVENTS_URL",
        ),
        ({"PROMETHEUS_URL": "prometheus:9090"}, "PROMETHEUS_URL"),
        ({"ALERTMANAGER_URL": "//am"}, "ALERTMANAGER_URL"),
    ],
)
def test_invalid_configuration_names_the_variable(env, variable):
    with pytest.raises(ValueError, match=variable):
        ChannelsConfig.from_env(env)


def test_invalid_url_error_does_not_echo_the_secret_url():
    with pytest.raises(ValueError) as info:
        ChannelsConfig.from_env(
            {"SLACK_WEBHOOK_URL": "ftp://hooks.slack.com/services/T/B/supersecret"}
        )
    assert "supersecret" not in str(info.value)


async def test_registry_notifiers_reach_the_fakes(
    fake_slack, fake_pagerduty, fake_twilio, fake_smtp
):
    env = {
        "SLACK_WEBHOOK_URL": fake_slack.webhook_url,
        "SMTP_HOST": fake_smtp.host,
        "SMTP_PORT": str(fake_smtp.port),
        "SMTP_TLS": "none",
        "ALERT_EMAIL_RECIPIENTS": "ops@passiton.test",
        "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": "+14155550100",
        "TWILIO_API_URL": fake_twilio.base_url,
        "ALERT_SMS_RECIPIENTS": "+14155550111",
        "PAGERDUTY_INTEGRATION_KEY": "R0123456789abcdef0123456789abcde",
        "PAGERDUTY_EVENTS_URL": fake_pagerduty.events_url,
    }
    notifiers = build_notifiers(ChannelsConfig.from_env(env))
    try:
        for notifier in notifiers.values():
            await notifier.notify(make_message())
    finally:
        await aclose_notifiers(notifiers)
    assert len(fake_slack.messages) == 1
    assert len(fake_smtp.messages) == 1
    assert len(fake_twilio.messages) == 1
    assert len(fake_pagerduty.events) == 1


def test_twilio_without_sms_recipients_texts_only_the_on_call_people() -> None:
    """Twilio's credentials without ALERT_SMS_RECIPIENTS: SMS and voice are on for the on-call
    file's people, and the severity table texts nobody."""
    config = ChannelsConfig.from_env(
        {
            "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "t",
            "TWILIO_PHONE_NUMBER": "+14155550100",
        }
    )
    assert config.sms is not None
    assert config.sms.recipients == ()
