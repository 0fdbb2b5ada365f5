"""The bridge process as it runs: the bridge's application with the console mounted under
``/console/``, and the subcommands that need both (``bridge``, ``user``).

This is the one place that imports the bridge and the console together: the bridge does not
import the console (``make lint`` checks it), the console sees the bridge only through
``console.host.ConsoleHost``, which ``BridgeConsoleHost`` implements over a running ``Bridge``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry

from bridge import commands as bridge_commands
from bridge.app import Bridge, SubApp, create_app, utc_now
from bridge.channels.base import Notifier
from bridge.config import BridgeConfig
from bridge.oncall.actions import IncidentActions
from bridge.oncall.calendar import calendar_secret, feed_url
from bridge.oncall.config import OncallConfig
from bridge.storage import Storage
from bridge.storage.console import ConsoleStore
from console import cli as console_cli
from console import token_cli
from console.api.routes import PREFIX as API_PREFIX
from console.api.routes import create_api_app
from console.common import PREFIX
from console.host import ConsoleHost, WebPush
from console.views import create_console_app


class BridgeConsoleHost:
    """The console's view of a running bridge (a ``ConsoleHost``)."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    @property
    def storage(self) -> Storage:
        return self._bridge.storage

    @property
    def prometheus_url(self) -> str:
        return self._bridge.config.prometheus_url

    @property
    def alertmanager_url(self) -> str:
        return self._bridge.config.alertmanager_url

    @property
    def alertmanager_urls(self) -> tuple[str, ...]:
        return self._bridge.config.alertmanager_api_urls

    @property
    def registry(self) -> CollectorRegistry:
        return self._bridge.metrics.registry

    def queries(self) -> ConsoleStore:
        # every backend has them; the storage interface does not declare them (yet)
        store: ConsoleStore = self._bridge.storage.console()
        return store

    def now(self) -> datetime:
        return self._bridge.clock()

    def wake_delivery(self) -> None:
        self._bridge.delivery.wake()

    async def reload_routing(self) -> None:
        await self._bridge.router.refresh(self._bridge.storage)

    def exported_thresholds(self) -> list[tuple[str, str, float]]:
        return self._bridge.router.thresholds()

    def incident_actions(self) -> IncidentActions | None:
        # the bridge's StoredIncidentActions: the console's acknowledgement stops the
        # escalation and is mirrored (PagerDuty, Slack) like every other
        return self._bridge.actions

    def oncall(self) -> OncallConfig | None:
        return self._bridge.oncall

    def web_push(self) -> WebPush | None:
        bridge = self._bridge
        settings = bridge.config.channels.webpush if bridge.config.channels else None
        if settings is None or bridge.tokens is None or "webpush" not in bridge.notifiers:
            return None
        return WebPush(settings.keys.public_key, bridge.tokens)

    def calendar_url(self, kind: str, ident: str) -> str:
        config = self._bridge.config
        if not config.public_url or not config.webhook_token:
            return ""
        return feed_url(config.public_url, calendar_secret(config.webhook_token), kind, ident)


def console_subapp(bridge: Bridge) -> web.Application:
    """The console of this bridge, configured by its ``BRIDGE_CONSOLE_*`` settings."""
    host: ConsoleHost = BridgeConsoleHost(bridge)
    return create_console_app(
        host,
        secret=bridge.config.console_secret,
        session_seconds=bridge.config.console_session_seconds,
        public_url=bridge.config.console_public_url,
        trusted_proxies=bridge.config.console_trusted_proxies,
        body_timeout_seconds=bridge.config.body_timeout_seconds,
        working_hours=bridge.config.console_working_hours,
        oidc=bridge.config.oidc,
    )


def api_subapp(bridge: Bridge) -> web.Application:
    """The JSON API of this bridge (``/api/v1/``), on the same host view as the console."""
    return create_api_app(
        BridgeConsoleHost(bridge),
        trusted_proxies=bridge.config.console_trusted_proxies,
        body_timeout_seconds=bridge.config.body_timeout_seconds,
    )


SUBAPPS: dict[str, SubApp] = {f"{PREFIX}/": console_subapp, f"{API_PREFIX}/": api_subapp}


def create_bridge_app(
    config: BridgeConfig,
    *,
    notifiers: dict[str, Notifier] | None = None,
    clock: Callable[[], datetime] = utc_now,
    workers: bool = True,
    oncall: OncallConfig | None = None,
) -> web.Application:
    """The bridge's application with the console: what ``passiton-monitoring bridge`` serves
    (``oncall``: an on-call file already read, instead of ``config``'s ``ONCALL_CONFIG``)."""
    return create_app(
        config,
        notifiers=notifiers,
        clock=clock,
        workers=workers,
        subapps=SUBAPPS,
        oncall=oncall,
    )


def cmd_bridge(args: argparse.Namespace) -> int:
    return bridge_commands.cmd_bridge(args, subapps=SUBAPPS)


def cmd_user(args: argparse.Namespace) -> int:
    config = bridge_commands.load_config()
    if config is None:
        return 2
    return console_cli.cmd_user(args, config)


def cmd_token(args: argparse.Namespace) -> int:
    config = bridge_commands.load_config()
    if config is None:
        return 2
    return token_cli.cmd_token(args, config)


# The bridge's subcommands, in the order `--help` lists them.
COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {
    "bridge": (
        "run the bridge (webhook receiver + delivery workers + console)",
        bridge_commands.configure_bridge,
        cmd_bridge,
    ),
    **bridge_commands.COMMANDS,
    "user": (
        "console users: user add NAME --role viewer|responder|admin (password on stdin)",
        console_cli.configure_user,
        cmd_user,
    ),
    "token": (
        "personal API tokens: token create NAME --user USER [--role R] [--organizations A,B]"
        " [--expires 30d] | token revoke NAME [--user USER] | token list",
        token_cli.configure_token,
        cmd_token,
    ),
}
