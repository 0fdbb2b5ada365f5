"""Run the exporter's two listeners until SIGTERM/SIGINT; in-flight requests finish on the way out.

The internal listener serves ``/v1/events``, ``/metrics`` and the OpenAPI document; the public one
serves the beacon, ``beacon.js``, the Stripe webhook and health. Both close a connection that has
not sent a complete request head within ``EXPORTER_HEADER_TIMEOUT_SECONDS`` (aiohttp's keep-alive
timer runs from the moment a connection opens, and an idle or half-sent connection is closed when
it fires); request bodies are read under ``EXPORTER_BODY_TIMEOUT_SECONDS`` by the handlers.

The public listener holds at most ``EXPORTER_PUBLIC_MAX_CONNECTIONS`` connections: one more is
closed as soon as it is accepted and counted in ``passiton_exporter_connections_refused_total``.
The cap is checked against ``RLIMIT_NOFILE`` at start-up (``descriptor_budget``), so a flood of
idle connections to the public listener can never spend the descriptors the internal listener
(``/metrics``) needs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from exporter.app import EVENTS, METRICS, PUBLIC, create_app
from exporter.config import ExporterConfig
from passiton_common import event_loop
from passiton_common.connection_cap import CappedSite, ConnectionCap, descriptor_budget

log = logging.getLogger("exporter")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

SHUTDOWN_TIMEOUT_SECONDS = 10.0
LINGERING_SECONDS = 1.0


class _DirectRunner(web.AppRunner):
    """An ``AppRunner`` whose server hands ``direct`` routes (method, path) straight to their
    handler, the router's resolution and the application's per-request machinery skipped; every
    other request goes through the application as usual. For the hot path: ``POST /v1/events``."""

    def __init__(self, app: web.Application, direct: dict[tuple[str, str], Handler], **kwargs: Any):
        super().__init__(app, **kwargs)
        self._direct = direct

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        routed = server.request_handler
        direct = self._direct

        async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
            handler = direct.get((request.method, request.path))
            if handler is None:
                return await routed(request)
            return await handler(request)

        server.request_handler = dispatch
        return server


async def start_listeners(
    app: web.Application,
    config: ExporterConfig,
    internal: tuple[str, int],
    public: tuple[str, int],
) -> list[web.AppRunner]:
    """Start the internal app on ``internal`` and ``app[PUBLIC]`` on ``public``; runners returned.

    A port of 0 picks a free one: ``runner.addresses`` says which. The public listener's
    connection cap is fitted to the descriptor limit first.
    """
    refused = app[METRICS].connections_refused.labels(listener="public")
    cap = ConnectionCap(
        descriptor_budget(config.public_max_connections, what="exporter public listener"),
        refused.inc,
    )
    runners: list[web.AppRunner] = []
    for application, (host, port) in ((app, internal), (app[PUBLIC], public)):
        direct = {("POST", "/v1/events"): app[EVENTS].handle} if application is app else {}
        runner = _DirectRunner(
            application,
            direct,
            access_log=None,
            keepalive_timeout=config.header_timeout_seconds,
            # after an early answer (413, 408), unread body is drained for at most this long
            lingering_time=LINGERING_SECONDS,
            shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        )
        await runner.setup()
        if application is app:
            await web.TCPSite(runner, host, port).start()
        else:
            await CappedSite(runner, host, port, cap=cap).start()
        runners.append(runner)
    return runners


async def serve(config: ExporterConfig, internal: tuple[str, int], public: tuple[str, int]) -> None:
    app = create_app(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runners = await start_listeners(app, config, internal, public)
    log.info(
        "exporter listening",
        extra={
            "internal": f"{internal[0]}:{internal[1]}",
            "public": f"{public[0]}:{public[1]}",
            "development": config.development,
            "event_loop": event_loop.name(loop),
        },
    )
    try:
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def run(config: ExporterConfig, internal: tuple[str, int], public: tuple[str, int]) -> None:
    event_loop.run(serve(config, internal, public))
