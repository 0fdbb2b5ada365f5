"""The Web Push tests' bridge: the bridge process's app (bridge + console) with an on-call file
whose person Alice is paged by push as the console user ``responder``, the real ``webpush``
channel sending to the fake push service over https, recording channels for the rest."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from bridge.app import BRIDGE
from bridge.channels.config import ChannelsConfig
from bridge.channels.webpush import WebPushNotifier
from bridge.channels.webpush_keys import VapidKeys, WebPushSettings
from bridge.storage import open_storage
from bridge.storage.push import PushSubscriptions
from passiton_monitoring.bridge_process import create_bridge_app
from tests.bridge.support import T0, BridgeClient, Clock, make_config, notifiers
from tests.console.support import add_users
from tests.fakes.push import FakePushService
from tests.oncall.bridge_support import write_oncall

KEYS = VapidKeys.generate()
SETTINGS = WebPushSettings(KEYS, "mailto:oncall@example.org")
PUSH_ONCALL_YAML = """\
people:
  - id: alice
    name: Alice Example
    time_zone: Europe/Berlin
    contacts: {push: responder, email: alice@example.org}
schedules: []
escalation_policies:
  - id: default
    steps:
      - {notify: ["person:alice"], via: [push]}
routes:
  - {matchers: ['severity="critical"'], policy: default}
"""


@dataclass
class PushConsole:
    client: BridgeClient
    push: FakePushService
    subscriptions: PushSubscriptions


@asynccontextmanager
async def push_console(
    db_url: str,
    aiohttp_client: Any,
    tmp_path: Path,
    alertmanager: str,
    push: FakePushService,
    client_ssl: ssl.SSLContext,
) -> AsyncIterator[PushConsole]:
    clock = Clock(T0)
    config = make_config(
        db_url,
        alertmanager_url=alertmanager,
        prometheus_url="http://127.0.0.1:9",
        channels=replace(ChannelsConfig(), webpush=SETTINGS),
    )
    async with (
        open_storage(db_url) as storage,
        httpx.AsyncClient(verify=client_ssl) as http,
    ):
        subscriptions = PushSubscriptions(storage)
        chans: dict[str, Any] = {
            **notifiers("slack", "email", "pagerduty"),
            "webpush": WebPushNotifier(SETTINGS, subscriptions, http, clock=clock),
        }
        oncall = write_oncall(tmp_path, PUSH_ONCALL_YAML)
        app = create_bridge_app(config, notifiers=chans, clock=clock, workers=False, oncall=oncall)
        client = BridgeClient(
            await aiohttp_client(app), app[BRIDGE], chans, clock, alertmanager=alertmanager
        )
        await add_users(client.bridge.storage, T0)
        yield PushConsole(client, push, subscriptions)


async def page_by_push(console: PushConsole) -> dict[str, Any]:
    """The escalation's first step and the webpush delivery: the page as the browser decrypts
    it from the push service."""
    before = len(console.push.messages)
    assert await console.client.bridge.escalator.run_once() == 1
    assert await console.client.bridge.delivery.run_once("webpush") == 1
    assert console.push.refusals == []
    assert len(console.push.messages) == before + 1
    page: dict[str, Any] = console.push.messages[-1].json()
    return page
