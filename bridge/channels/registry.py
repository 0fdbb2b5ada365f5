"""Builds the configured channels' notifiers from ``ChannelsConfig``."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from datetime import datetime

import httpx

from bridge.channels.apprise import AppriseNotifier
from bridge.channels.base import Notifier
from bridge.channels.config import ChannelsConfig
from bridge.channels.console import ConsoleNotifier
from bridge.channels.email import EmailNotifier
from bridge.channels.pagerduty import PagerDutyNotifier
from bridge.channels.ratelimit import IntervalLimiter
from bridge.channels.slack import SlackNotifier
from bridge.channels.slack_incident import IncidentThreads, SlackThreads, utc_now
from bridge.channels.slack_webapi import SlackWebApi
from bridge.channels.sms import SmsNotifier
from bridge.channels.voice import VoiceNotifier
from bridge.channels.webpush import PushStore, WebPushNotifier

CHANNELS = ("slack", "email", "sms", "voice", "pagerduty", "apprise", "webpush", "console")
# Channels that only on-call escalation steps use (never the severity table).
ONCALL_ONLY = frozenset({"voice", "webpush"})


def build_notifiers(
    config: ChannelsConfig,
    http: httpx.AsyncClient | None = None,
    *,
    smtp_tls_context: ssl.SSLContext | None = None,
    slack_interval: float = 1.0,
    public_url: str = "",
    oncall: bool = False,
    slack_threads: SlackThreads | None = None,
    push_store: PushStore | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> dict[str, Notifier]:
    """One notifier per configured channel; only ``console`` when none is configured.

    ``http`` is shared by Slack and PagerDuty and stays the caller's to close; without it each
    makes its own client. Call ``aclose_notifiers`` on shutdown either way (Twilio's client
    holds an aiohttp session). With ``oncall`` (an on-call file), Twilio's credentials also
    make the voice channel, whose calls are answered at ``public_url``, and Apprise is on for
    the people's ``apprise`` contacts even without ``APPRISE_URLS_*``. Slack's Web API mode
    (``SLACK_BOT_TOKEN`` + ``SLACK_CHANNEL``) needs ``slack_threads``, the store of its
    incidents' messages. Web Push (``WEBPUSH_*``, with an on-call file) needs ``push_store``,
    the console users' browser subscriptions.
    """
    notifiers: dict[str, Notifier] = {}
    timeout = config.http_timeout
    if config.slack:
        slack = config.slack
        incidents = None
        if slack.web_api:
            if slack_threads is None:
                raise ValueError("Slack's Web API mode needs the store of its threads")
            assert slack.bot_token is not None
            assert slack.channel is not None
            api = SlackWebApi(
                slack.bot_token,
                slack.api_url,
                http,
                timeout=timeout,
                limiter=IntervalLimiter(slack_interval),
            )
            incidents = IncidentThreads(api, slack.channel, slack_threads, clock=clock)
        notifiers["slack"] = SlackNotifier(
            slack.webhook_url,
            http,
            timeout=timeout,
            limiter=IntervalLimiter(slack_interval),
            incidents=incidents,
        )
    if config.email:
        e = config.email
        notifiers["email"] = EmailNotifier(
            e.host,
            e.port,
            sender=e.sender,
            recipients=e.recipients,
            tls=e.tls,
            username=e.username,
            password=e.password,
            timeout=e.timeout,
            tls_context=smtp_tls_context,
        )
    if config.sms:
        s = config.sms
        notifiers["sms"] = SmsNotifier(
            s.account_sid,
            s.auth_token,
            s.from_number,
            s.recipients,
            api_url=s.api_url,
            timeout=timeout,
        )
    if config.sms and oncall:
        s = config.sms
        notifiers["voice"] = VoiceNotifier(
            s.account_sid,
            s.auth_token,
            s.from_number,
            public_url=public_url or None,
            api_url=s.api_url,
            timeout=timeout,
        )
    if config.pagerduty:
        notifiers["pagerduty"] = PagerDutyNotifier(
            config.pagerduty.integration_key,
            config.pagerduty.events_url,
            http,
            timeout=timeout,
            dedup=config.pagerduty.dedup,
        )
    if config.apprise or oncall:
        urls = config.apprise.urls if config.apprise else {}
        notifiers["apprise"] = AppriseNotifier(urls, timeout=timeout)
    if config.webpush and oncall and push_store is not None:
        notifiers["webpush"] = WebPushNotifier(
            config.webpush, push_store, http, timeout=timeout, clock=clock
        )
    # the severity table needs a channel (Apprise without APPRISE_URLS_* is the on-call file's)
    table = [n for n in notifiers if n not in ONCALL_ONLY and (n != "apprise" or config.apprise)]
    if not table:
        notifiers["console"] = ConsoleNotifier()
    return notifiers


async def aclose_notifiers(notifiers: Mapping[str, Notifier]) -> None:
    """Release what the notifiers hold (HTTP sessions they created)."""
    for notifier in notifiers.values():
        close = getattr(notifier, "aclose", None)
        if close is not None:
            await close()
