"""The channels' settings, read once from the environment and validated at start-up.

A channel whose variables are all unset is off. A channel that is half configured (say
``SMTP_HOST`` without ``ALERT_EMAIL_RECIPIENTS``) is an error naming the missing variable, so a
typo is found when the bridge starts rather than when the first critical alert fails to page.
Secrets never appear in ``repr``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Literal

from bridge.channels.apprise import is_valid_url, split_urls
from bridge.channels.webpush_keys import WebPushSettings, read_webpush
from passiton_common.settings import ConfigError, EnvReader, read_secrets
from passiton_common.variables import SMTP_DEFAULT_PORTS, default_of, variable

SmtpTls = Literal["starttls", "tls", "none"]

# The defaults, as declared in passiton_common/variables.py.
DEFAULT_PAGERDUTY_EVENTS_URL: str = default_of("PAGERDUTY_EVENTS_URL")
DEFAULT_TWILIO_API_URL: str = default_of("TWILIO_API_URL")
DEFAULT_SLACK_API_URL: str = default_of("SLACK_API_URL")
DEFAULT_EMAIL_FROM: str = default_of("ALERT_EMAIL_FROM")
_DEFAULT_TLS: SmtpTls = default_of("SMTP_TLS")
_DEFAULT_DEDUP: Literal["alert", "group"] = default_of("PAGERDUTY_DEDUP_KEY")

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_TWILIO_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;.][^@\s<>,;]*$")
# A conversation id (C…, G…, D…) or a channel name, with or without its "#".
_SLACK_CHANNEL = re.compile(r"^(?:[CGD][A-Z0-9]{2,20}|#?[a-z0-9][a-z0-9._-]{0,79})$")


def is_e164(number: str) -> bool:
    return bool(_E164.match(number))


def is_email(address: str) -> bool:
    return bool(_EMAIL.match(address))


@dataclass(frozen=True)
class SlackSettings:
    """Slack by incoming webhook, by the Web API (bot token and channel), or both: with the
    Web API an incident is one message with buttons, its changes thread replies; the webhook
    then only serves organizations' own webhook URLs."""

    webhook_url: str | None = field(default=None, repr=False)  # the URL is the credential
    bot_token: str | None = field(default=None, repr=False)
    channel: str | None = None
    api_url: str = DEFAULT_SLACK_API_URL

    @property
    def web_api(self) -> bool:
        return self.bot_token is not None and self.channel is not None


@dataclass(frozen=True)
class EmailSettings:
    host: str
    recipients: tuple[str, ...]
    sender: str = DEFAULT_EMAIL_FROM
    port: int = SMTP_DEFAULT_PORTS[_DEFAULT_TLS]
    tls: SmtpTls = _DEFAULT_TLS
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0


@dataclass(frozen=True)
class SmsSettings:
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str = ""
    recipients: tuple[str, ...] = ()
    api_url: str = DEFAULT_TWILIO_API_URL


@dataclass(frozen=True)
class PagerDutySettings:
    integration_key: str = field(repr=False)
    events_url: str = DEFAULT_PAGERDUTY_EVENTS_URL
    # "alert": one incident per alert (fingerprint + startsAt); "group": Alertmanager's own
    # dedup_key (sha256 of the group key), so its pagerduty_configs receiver (the out-of-band
    # path while the bridge's database is down) and the bridge open one incident, not two.
    dedup: Literal["alert", "group"] = _DEFAULT_DEDUP


@dataclass(frozen=True)
class AppriseSettings:
    # severity -> Apprise URLs (APPRISE_URLS_CRITICAL, ...); the URLs are credentials
    urls: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ChannelsConfig:
    """Which channels are on and how to reach them."""

    slack: SlackSettings | None = None
    email: EmailSettings | None = None
    sms: SmsSettings | None = None
    pagerduty: PagerDutySettings | None = None
    # checks Slack's button presses (POST /v1/slack/interactions); None: that endpoint is off
    slack_signing_secret: str | None = field(default=None, repr=False)
    apprise: AppriseSettings | None = None  # the severity table's Apprise URLs
    # Web Push to console users' browsers (WEBPUSH_*): on-call pages only (``via: push``)
    webpush: WebPushSettings | None = field(default=None, repr=False)
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    alertmanager_urls: tuple[str, ...] = ()  # every one of an HA cluster; the first is the above
    http_timeout: float = 10.0

    @property
    def enabled(self) -> tuple[str, ...]:
        """Names of the configured channels; ``("console",)`` when there are none."""
        names = tuple(
            name
            for name, settings in (
                ("slack", self.slack),
                ("email", self.email),
                ("sms", self.sms),
                ("pagerduty", self.pagerduty),
                ("apprise", self.apprise),
            )
            if settings is not None
        )
        return names or ("console",)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChannelsConfig:
        """Parse and validate the contract's channel variables; ConfigError names the culprit."""
        get = EnvReader(read_secrets(env))
        alertmanagers = get.urls("ALERTMANAGER_URL")
        return cls(
            slack=_slack(get),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            email=_email(get),
            sms=_sms(get),
            pagerduty=_pagerduty(get),
            apprise=_apprise(get),
            webpush=read_webpush(get),
            prometheus_url=get.url("PROMETHEUS_URL"),
            alertmanager_url=alertmanagers[0] if alertmanagers else None,
            alertmanager_urls=alertmanagers,
        )


def _slack(get: EnvReader) -> SlackSettings | None:
    """The webhook, the Web API, or both. One of SLACK_BOT_TOKEN and SLACK_CHANNEL without the
    other is refused at start-up (not left for ``doctor``): the operator meant the Web API, and
    falling back to the webhook would quietly lose the buttons and threads."""
    url = get.url("SLACK_WEBHOOK_URL")
    token, channel = get("SLACK_BOT_TOKEN"), get("SLACK_CHANNEL")
    if token is None and channel is not None:
        raise ConfigError("SLACK_BOT_TOKEN is required when SLACK_CHANNEL is set")
    if channel is None and token is not None:
        raise ConfigError("SLACK_CHANNEL is required when SLACK_BOT_TOKEN is set")
    api_url = get.url("SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if token is None or channel is None:
        if get("SLACK_API_URL"):
            raise ConfigError("SLACK_API_URL is set but SLACK_BOT_TOKEN and SLACK_CHANNEL are not")
        return SlackSettings(webhook_url=url) if url else None
    if any(c.isspace() for c in token):
        raise ConfigError("SLACK_BOT_TOKEN must not contain whitespace")
    if not _SLACK_CHANNEL.match(channel):
        raise ConfigError(
            f"SLACK_CHANNEL must be a channel id like C0123ABCD or a channel name, got {channel!r}"
        )
    return SlackSettings(webhook_url=url, bot_token=token, channel=channel, api_url=api_url)


def _email(get: EnvReader) -> EmailSettings | None:
    names = (
        "SMTP_HOST",
        "ALERT_EMAIL_RECIPIENTS",
        "SMTP_PORT",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "SMTP_TLS",
        "ALERT_EMAIL_FROM",
    )
    if not any(get(n) for n in names):
        return None
    host = get.required("SMTP_HOST", "e-mail is configured (ALERT_EMAIL_RECIPIENTS or SMTP_*)")
    get.required("ALERT_EMAIL_RECIPIENTS", "SMTP_HOST is set")
    recipients = get.list("ALERT_EMAIL_RECIPIENTS")
    for address in recipients:
        if not is_email(address):
            raise ConfigError(f"ALERT_EMAIL_RECIPIENTS: {address!r} is not an e-mail address")
    tls = get.choice("SMTP_TLS")
    port_text = get("SMTP_PORT")
    if port_text is None:
        port = SMTP_DEFAULT_PORTS[tls]
    else:
        low, high = int(variable("SMTP_PORT").minimum or 0), int(variable("SMTP_PORT").maximum or 0)
        if not port_text.isdigit() or not low <= int(port_text) <= high:
            raise ConfigError(f"SMTP_PORT must be a port number ({low}-{high}), got {port_text!r}")
        port = int(port_text)
    username, password = get("SMTP_USERNAME"), get("SMTP_PASSWORD")
    if username and password is None:
        raise ConfigError("SMTP_PASSWORD is required when SMTP_USERNAME is set")
    if password and username is None:
        raise ConfigError("SMTP_USERNAME is required when SMTP_PASSWORD is set")
    sender = get.value("ALERT_EMAIL_FROM") or DEFAULT_EMAIL_FROM
    if not is_email(parseaddr(sender)[1]):
        raise ConfigError(f"ALERT_EMAIL_FROM must be an e-mail address, got {sender!r}")
    return EmailSettings(
        host=host,
        port=port,
        tls=tls,  # type: ignore[arg-type]
        username=username,
        password=password,
        sender=sender,
        recipients=recipients,
    )


def _sms(get: EnvReader) -> SmsSettings | None:
    names = (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_PHONE_NUMBER",
        "ALERT_SMS_RECIPIENTS",
        "TWILIO_API_URL",
    )
    if not any(get(n) for n in names):
        return None
    because = "SMS is configured (TWILIO_* or ALERT_SMS_RECIPIENTS)"
    sid = get.required("TWILIO_ACCOUNT_SID", because)
    if not _TWILIO_SID.match(sid):
        raise ConfigError("TWILIO_ACCOUNT_SID must be 'AC' followed by 32 hexadecimal digits")
    token = get.required("TWILIO_AUTH_TOKEN", because)
    from_number = get.required("TWILIO_PHONE_NUMBER", because)
    if not is_e164(from_number):
        raise ConfigError(
            f"TWILIO_PHONE_NUMBER must be an E.164 number like +14155550100, got {from_number!r}"
        )
    # Without ALERT_SMS_RECIPIENTS only the on-call file's people get texts (and calls).
    recipients = get.list("ALERT_SMS_RECIPIENTS")
    for number in recipients:
        if not is_e164(number):
            raise ConfigError(
                f"ALERT_SMS_RECIPIENTS: {number!r} is not an E.164 number like +14155550100"
            )
    api_url = get.url("TWILIO_API_URL") or DEFAULT_TWILIO_API_URL
    return SmsSettings(
        account_sid=sid,
        auth_token=token,
        from_number=from_number,
        recipients=recipients,
        api_url=api_url,
    )


def _pagerduty(get: EnvReader) -> PagerDutySettings | None:
    key = get("PAGERDUTY_INTEGRATION_KEY")
    url = get.url("PAGERDUTY_EVENTS_URL")
    if key is None:
        if get("PAGERDUTY_EVENTS_URL"):
            raise ConfigError(
                "PAGERDUTY_INTEGRATION_KEY is required when PAGERDUTY_EVENTS_URL is set"
            )
        return None
    if any(c.isspace() for c in key):
        raise ConfigError("PAGERDUTY_INTEGRATION_KEY must not contain whitespace")
    dedup = get.choice("PAGERDUTY_DEDUP_KEY")
    return PagerDutySettings(
        integration_key=key,
        events_url=url or DEFAULT_PAGERDUTY_EVENTS_URL,
        dedup="group" if dedup == "group" else "alert",
    )


# --- Apprise ----------------------------------------------------------------------------------


def _apprise(get: EnvReader) -> AppriseSettings | None:
    """Each severity's Apprise URLs, every one parsed by Apprise now: an error names the variable
    and the URL's position, never the URL (it holds credentials)."""
    given = {
        "critical": ("APPRISE_URLS_CRITICAL", get("APPRISE_URLS_CRITICAL")),
        "high": ("APPRISE_URLS_HIGH", get("APPRISE_URLS_HIGH")),
        "medium": ("APPRISE_URLS_MEDIUM", get("APPRISE_URLS_MEDIUM")),
        "low": ("APPRISE_URLS_LOW", get("APPRISE_URLS_LOW")),
    }
    urls: dict[str, tuple[str, ...]] = {}
    for severity, (name, text) in given.items():
        found = split_urls(text or "")
        for position, url in enumerate(found, 1):
            if not is_valid_url(url):
                raise ConfigError(
                    f"{name}: URL {position} of {len(found)} is not an Apprise URL Apprise can use"
                    " (scheme://…; https://github.com/caronc/apprise/wiki)"
                )
        if found:
            urls[severity] = found
    return AppriseSettings(urls) if urls else None
