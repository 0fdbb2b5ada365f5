"""The bridge's aiohttp application: webhook receiver, delivery workers, maintenance loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.channels.base import Notifier
from bridge.channels.registry import ONCALL_ONLY, aclose_notifiers, build_notifiers
from bridge.channels.slack import SlackNotifier
from bridge.channels.webpush import WebPushNotifier
from bridge.codec import alert_from_dict
from bridge.config import BridgeConfig
from bridge.deadman import DeadMansSwitch
from bridge.delivery import DeliveryEngine
from bridge.fatigue import FatigueRules
from bridge.ingest import Ingestor, IngestResult, build_deliveries
from bridge.metrics import BridgeMetrics
from bridge.model import Notification
from bridge.oncall.calendar import calendar_secret
from bridge.oncall.config import OncallConfig
from bridge.oncall.escalator import Escalator
from bridge.oncall.incident_actions import StoredIncidentActions
from bridge.oncall.links import AckLinks
from bridge.oncall.timers import IncidentTimers
from bridge.public.app import create_public_app, public_admission
from bridge.public.context import InboundRequests, PublicContext
from bridge.public.slack import SlackInteractionsConfig, slack_interactions
from bridge.reconcile import Reconciler
from bridge.rollup import RollupRunner
from bridge.routing import Router
from bridge.sanitize import redact
from bridge.storage import Storage, StorageUnavailable, open_storage
from bridge.storage.push import PushSubscriptions
from bridge.storage.slack_messages import SlackMessages
from bridge.webhook import alertmanager_handler
from passiton_common import loop_lag
from passiton_common.connection_cap import CappedSite, ConnectionCap, descriptor_budget
from passiton_common.http_client import async_client

log = logging.getLogger(__name__)

SETTLED_NOTICE = "settled"
DAY = 24 * 3600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class Bridge:
    """Everything one bridge process runs, wired from one BridgeConfig."""

    def __init__(
        self,
        config: BridgeConfig,
        notifiers: dict[str, Notifier],
        *,
        clock: Callable[[], datetime] = utc_now,
        storage: Storage | None = None,
        oncall: OncallConfig | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.oncall = oncall
        self.notifiers = notifiers
        self.clock = clock
        self.storage = storage or open_storage(config.database_url, pool_size=config.db_pool_size)
        self.metrics = BridgeMetrics()
        # the severity table's channels: not the on-call-only ones, not SMS without a number
        sms = config.channels.sms if config.channels is not None else None
        sms_numbers = sms.recipients if sms is not None else ("default",)
        # Apprise: the severities with APPRISE_URLS_* (without any, only the on-call file's)
        apprise = getattr(config.channels, "apprise", None)
        apprise_urls = apprise.urls if apprise is not None else {}
        self.router = Router(
            (
                n
                for n in notifiers
                if n not in ONCALL_ONLY
                and (n != "sms" or sms_numbers)
                and (n != "apprise" or apprise_urls)
            ),
            apprise_urls=apprise_urls,
        )
        self.metrics.thresholds_from(self.router.thresholds)
        webpush = notifiers.get("webpush")
        if isinstance(webpush, WebPushNotifier):
            webpush.count = lambda outcome: self.metrics.webpush_sends.labels(outcome).inc()
        self.rules = FatigueRules(
            cooldown_seconds=config.cooldown_seconds,
            flap_cycles=config.flap_cycles,
            flap_window_seconds=config.flap_window_seconds,
            flap_settle_seconds=config.flap_settle_seconds,
        )
        self.deadman = DeadMansSwitch(
            config.deadman_after_seconds,
            lambda: self.router.channels_for("critical", None),
            self.metrics,
            started_at=clock(),
        )
        self.delivery = DeliveryEngine(
            self.storage,
            notifiers,
            config.retry,
            self.metrics,
            clock,
            concurrency=config.delivery_concurrency,
            poll_seconds=config.delivery_poll_seconds,
            timeout_seconds=config.delivery_timeout_seconds,
            lease_seconds=config.delivery_lease_seconds,
            rate_limits=config.rate_limits,
        )
        self.ingestor = Ingestor(
            self.storage,
            self.router,
            self.rules,
            self.deadman,
            self.metrics,
            clock,
            on_enqueued=self.delivery.wake,
            oncall=oncall,
            on_escalation=self._wake_escalator,
            incident_window=timedelta(seconds=config.incident_window_seconds),
        )
        # signed, expiring, single-use action tokens: e-mail links (with a public URL) and the
        # Acknowledge of push notifications (posted to the console)
        self.tokens = (
            AckLinks(config.webhook_token, config.public_url, clock)
            if config.webhook_token
            else None
        )
        self.links = self.tokens if config.public_url else None
        # the escalator also sweeps the incidents' timers (acknowledgements that end, snoozes),
        # so it runs without an on-call file too
        self.timers = IncidentTimers(
            self.storage,
            self.metrics,
            clock,
            mirror_channels=mirror_channels(notifiers),
            on_enqueued=self.delivery.wake,
        )
        self.escalator: Escalator | None = Escalator(
            self.storage,
            oncall,
            notifiers,
            self.metrics,
            clock,
            links=self.links,
            push_tokens=self.tokens,
            on_enqueued=self.delivery.wake,
            timers=self.timers,
        )
        self.actions = StoredIncidentActions(
            self.storage,
            self.metrics,
            clock,
            oncall=oncall,
            mirror_channels=mirror_channels(notifiers),
            alertmanager_urls=config.alertmanager_api_urls,
            http=http,
            on_enqueued=self.delivery.wake,
            on_walk_changed=self._wake_escalator,
        )
        self.rollup = RollupRunner(
            self.storage,
            config.prometheus_url,
            interval_seconds=config.rollup_interval_seconds,
            clock=clock,
        )
        self.reconciler = Reconciler(
            self.storage,
            self.ingest,
            self.metrics,
            clock,
            config.alertmanager_api_urls,
            interval_seconds=config.reconcile_interval_seconds,
            vanish_after_uptime_seconds=config.reconcile_min_uptime_seconds,
        )
        self._maintenance: asyncio.Task[None] | None = None
        self._listener = self.storage.outbox_listener(self.delivery.wake)
        self._migrated = False
        self.public_port: int | None = None  # the public listener's, once it listens
        self._last_purge: float | None = None

    def _wake_escalator(self) -> None:
        if self.escalator is not None:
            self.escalator.wake()

    def public_context(self) -> PublicContext | None:
        """What the public listener needs; None without an on-call file (nobody to answer)."""
        if self.oncall is None:
            return None
        sms = self.config.channels.sms if self.config.channels is not None else None
        return PublicContext(
            actions=self.actions,
            storage=self.storage,
            oncall=self.oncall,
            metrics=self.metrics,
            clock=self.clock,
            public_url=self.config.public_url,
            twilio_auth_token=sms.auth_token if sms else None,
            pagerduty_webhook_secret=self.config.pagerduty_webhook_secret or None,
            links=self.links,
            calendar_secret=calendar_secret(self.config.webhook_token),
        )

    async def ingest(self, notification: Notification) -> IngestResult:
        if self.router.version is None:
            # Started while the database was down: migrate and load routing before the first
            # notification is routed with defaults instead of the organizations' preferences.
            await self.prepare()
        return await self.ingestor.ingest(notification)

    async def start(self, *, workers: bool = True) -> None:
        await self.storage.open()
        try:
            await self.prepare()
        except StorageUnavailable as exc:
            log.warning(
                "database unavailable at start-up; will keep trying", extra={"error": str(exc)}
            )
        if workers:
            if self._listener is not None:
                self._listener.start()
            self.delivery.start()
            self._maintenance = asyncio.create_task(self._maintenance_loop(), name="maintenance")
            self.reconciler.start()  # off with BRIDGE_RECONCILE_INTERVAL_SECONDS=0
            if self.escalator is not None:
                self.escalator.start()
            if self.config.rollup_interval_seconds > 0:
                self.rollup.start()

    async def stop(self) -> None:
        if self.escalator is not None:
            await self.escalator.stop()
        await self.reconciler.stop()
        await self.rollup.stop()
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
            self._maintenance = None
        if self._listener is not None:
            await self._listener.stop()
        await self.delivery.stop()
        await self.storage.close()

    async def prepare(self) -> None:
        if not self._migrated:
            if self.config.auto_migrate:
                await self.storage.migrate()
            self._migrated = True
        await self.router.refresh(self.storage)

    async def maintenance_once(self) -> None:
        """Reload routing, run the dead man's switch, release settled flaps, update gauges and,
        once a day, apply the retention period."""
        await self.prepare()
        now = self.clock()
        queued = await self.deadman.check(self.storage, now)
        queued += await self.release_settled_flaps(now)
        if queued:
            self.delivery.wake()
        depth, oldest, _ = await self.storage.queue_stats()
        self.metrics.queue_depth.set(depth)
        self.metrics.queue_oldest_pending.set(
            max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
        )
        if self._last_purge is None or time.monotonic() - self._last_purge >= DAY:
            cutoff = now - timedelta(days=self.config.retention_days)
            counts = await self.storage.purge(cutoff)
            self._last_purge = time.monotonic()
            log.info("retention applied", extra={"cutoff": cutoff.isoformat(), "deleted": counts})

    async def release_settled_flaps(self, now: datetime) -> int:
        """Tell the channels once how a flapping alert ended up after it settled."""
        quiet_since = now - timedelta(seconds=self.rules.flap_settle_seconds)
        async with self.storage.transaction() as tx:
            settled = await tx.claim_settled_flaps(quiet_since)
            groups: dict = {}  # not an incident's page: its alert's last one (no incident)
            for _, state in settled:
                if not state.last_alert:
                    continue
                alert = alert_from_dict(state.last_alert)
                if self.router.suppression(alert):
                    continue
                for route in self.router.routes(alert, now):
                    key = (None, route.channel, route.recipients, route.not_before, SETTLED_NOTICE)
                    groups.setdefault(key, []).append(alert)
            deliveries = build_deliveries(
                groups,
                group_key="passiton-bridge/flapping-settled",
                receiver="passiton-bridge",
                common_labels={},
                external_url="",
                now=now,
            )
            if deliveries:
                await tx.insert_deliveries(deliveries, now)
        return len(deliveries)

    async def _maintenance_loop(self) -> None:
        while True:
            try:
                await self.maintenance_once()
            except StorageUnavailable as exc:
                log.warning("maintenance skipped: database unavailable", extra={"error": str(exc)})
            except Exception:
                log.exception("maintenance failed")
            await asyncio.sleep(self.config.maintenance_interval_seconds)


async def _start_public(bridge: Bridge) -> web.AppRunner | None:
    """Serve the public listener (``BRIDGE_PUBLIC_LISTEN``) when it is set."""
    listen = bridge.config.public_listen
    context = bridge.public_context()
    if listen is None:
        return None
    if context is None:
        log.warning("BRIDGE_PUBLIC_LISTEN is set but ONCALL_CONFIG is not: nobody to answer")
        return None
    # at most BRIDGE_PUBLIC_MAX_CONNECTIONS at once (fitted to RLIMIT_NOFILE), each closed when
    # its request head has not arrived (or it sat idle) for the header timeout: a flood of idle
    # connections cannot spend the descriptors Alertmanager's webhook and /metrics need
    cap = ConnectionCap(
        descriptor_budget(bridge.config.public_max_connections, what="bridge public listener"),
        bridge.metrics.public_connections_refused.inc,
    )
    config = bridge.config
    admission = public_admission(
        config.public_rate_per_second,
        config.public_max_wait_seconds,
        bridge.metrics.public_throttled,
    )
    runner = web.AppRunner(
        create_public_app(context, extra_routes=slack_routes(bridge), admission=admission),
        access_log=None,
        keepalive_timeout=bridge.config.header_timeout_seconds,
        lingering_time=1.0,
    )
    await runner.setup()
    site = CappedSite(runner, listen[0], listen[1], cap=cap)
    await site.start()
    bridge.public_port = runner.addresses[0][1] if runner.addresses else listen[1]
    log.info("public listener started", extra={"listen": f"{listen[0]}:{bridge.public_port}"})
    return runner


def mirror_channels(notifiers: Mapping[str, Notifier]) -> list[str]:
    """Where an action on an incident is mirrored: PagerDuty (its incident acknowledged or
    resolved), and Slack when its message can be updated in place (the Web API)."""
    out = ["pagerduty"] if "pagerduty" in notifiers else []
    slack = notifiers.get("slack")
    if isinstance(slack, SlackNotifier) and slack.incidents is not None:
        out.append("slack")
    return out


def slack_routes(bridge: Bridge) -> dict[str, Any]:
    """Slack's button presses, when a signing secret is set and the Web API mode is on."""
    slack = bridge.notifiers.get("slack")
    secret = bridge.config.channels.slack_signing_secret if bridge.config.channels else None
    if not secret or bridge.oncall is None:
        return {}
    web_api = (
        slack.incidents.api
        if isinstance(slack, SlackNotifier) and slack.incidents is not None
        else None
    )
    people = {p.contacts.slack: p.id for p in bridge.oncall.people.values() if p.contacts.slack}
    replays = InboundRequests(bridge.storage, bridge.clock)  # shared by every replica
    handler = slack_interactions(
        SlackInteractionsConfig(secret), bridge.actions, people, bridge.clock, web_api, replays
    )
    return {"/v1/slack/interactions": handler}


BRIDGE = web.AppKey("bridge", Bridge)
# A sub-application the bridge process serves, built from the running bridge: the console is
# one (mounted by passiton_monitoring, which may import both; the bridge does not import it).
SubApp = Callable[[Bridge], web.Application]


async def _healthy(_: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def _ready(request: web.Request) -> web.Response:
    bridge = request.app[BRIDGE]
    try:
        await asyncio.wait_for(bridge.storage.ping(), 3.0)
    except (StorageUnavailable, TimeoutError) as exc:
        # The reason goes to the log only: error text can name hosts, users and databases.
        log.warning("not ready: database unavailable", extra={"error": redact(str(exc))})
        return web.Response(status=503, text="database unavailable\n")
    return web.Response(text="OK\n")


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[BRIDGE].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    config: BridgeConfig,
    *,
    notifiers: dict[str, Notifier] | None = None,
    clock: Callable[[], datetime] = utc_now,
    workers: bool = True,
    subapps: Mapping[str, SubApp] | None = None,
    oncall: OncallConfig | None = None,
) -> web.Application:
    """The bridge application. ``notifiers`` defaults to the channels the config enables;
    ``subapps`` maps a path prefix to a sub-application mounted there (``add_subapp``), started
    after the bridge (its database is open) and cleaned up after it. With
    ``config.public_listen`` the public listener (``bridge.public``) is served beside it."""
    if not config.webhook_token:
        raise ValueError("BRIDGE_WEBHOOK_TOKEN must be set: Alertmanager authenticates with it")
    oncall = oncall if oncall is not None else config.oncall
    http = async_client()
    owned: list = [http]
    storage = open_storage(config.database_url, pool_size=config.db_pool_size)
    if notifiers is None:
        notifiers = build_notifiers(
            config.channels,
            http,
            public_url=config.public_url,
            oncall=oncall is not None,
            slack_threads=SlackMessages(storage),
            push_store=PushSubscriptions(storage),
            clock=clock,
        )
        owned_notifiers = True
    else:
        owned_notifiers = False
    bridge = Bridge(config, notifiers, clock=clock, storage=storage, oncall=oncall, http=http)
    app = web.Application(client_max_size=config.max_body_bytes)
    app[BRIDGE] = bridge
    app.router.add_post("/v1/alertmanager", alertmanager_handler(bridge))
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_get("/metrics", _metrics)
    for prefix, make in (subapps or {}).items():
        app.add_subapp(prefix, make(bridge))

    async def lifecycle(_: web.Application):
        await bridge.start(workers=workers)
        public = await _start_public(bridge)
        yield
        if public is not None:
            await public.cleanup()
        await bridge.stop()
        if owned_notifiers:
            await aclose_notifiers(bridge.notifiers)
        for client in owned:
            await client.aclose()

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(loop_lag.cleanup_context(bridge.metrics.event_loop_lag))
    return app
