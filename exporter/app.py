"""The exporter's aiohttp applications: ingest endpoints in, /metrics out. Wiring only: the
handlers are ``exporter.handlers``'."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from exporter.config import ExporterConfig
from exporter.events import Rejection
from exporter.exposition import CachedExposition
from exporter.handlers.admission import public_admission
from exporter.handlers.beacon import BeaconHandler, BeaconScript
from exporter.handlers.events import EventsHandler
from exporter.handlers.http import encode
from exporter.handlers.stripe import StripeWebhook
from exporter.metrics import ExporterMetrics
from exporter.openapi import openapi_document
from exporter.probe import DatabaseProbe
from exporter.recorder import Recorder
from passiton_common import loop_lag

CONFIG = web.AppKey("config", ExporterConfig)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", ExporterMetrics)
RECORDER = web.AppKey("recorder", Recorder)
PUBLIC = web.AppKey("public", web.Application)
EVENTS = web.AppKey("events", EventsHandler)


async def _healthy(_: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def _ready(_: web.Request) -> web.Response:
    return web.Response(text="Ready\n")


def create_app(
    config: ExporterConfig, clock: Callable[[], float] = time.monotonic
) -> web.Application:
    """The internal application (``/v1/events``, ``/metrics``, OpenAPI, health).

    ``app[PUBLIC]`` is the public application (beacon, ``beacon.js``, Stripe webhook, health),
    served on its own listener and sharing this one's metrics and recorder; every request to it
    takes its turn under the global admission rate first (``handlers/admission.py``). ``clock``
    (monotonic seconds) is what the rate limits and the recorder's windows read: tests drive it.
    """
    config.check_startable()
    disable_created_metrics()
    registry = CollectorRegistry()
    metrics = ExporterMetrics.create(
        registry, config.widget_timeout_seconds, database_probe=bool(config.probe_database_url)
    )
    recorder = Recorder(metrics, config, clock)
    app = web.Application(client_max_size=config.max_body_bytes)
    public = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[public_admission(config, metrics, clock)],
    )
    for a in (app, public):
        a[CONFIG] = config
        a[REGISTRY] = registry
        a[METRICS] = metrics
        a[RECORDER] = recorder
    app[PUBLIC] = public

    openapi = encode(openapi_document())
    exposition = CachedExposition(metrics.all())
    recorder.on_series_removed.append(exposition.forget)

    async def metrics_handler(_: web.Request) -> web.Response:
        recorder.expire_idle()
        return web.Response(body=exposition.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi_handler(_: web.Request) -> web.Response:
        return web.Response(body=openapi, content_type="application/json")

    beacon = BeaconHandler(config, metrics, recorder, clock)
    events = app[EVENTS] = EventsHandler(config, metrics, recorder)
    app.router.add_post("/v1/events", events.handle)
    app.router.add_get("/v1/openapi.json", openapi_handler)
    app.router.add_get("/metrics", metrics_handler)
    public.router.add_post("/v1/beacon", beacon.handle)
    public.router.add_route("OPTIONS", "/v1/beacon", beacon.preflight)
    public.router.add_get("/v1/beacon.js", BeaconScript().handle)
    public.router.add_post(
        "/v1/stripe/webhook", StripeWebhook(config, metrics, recorder, clock).handle
    )
    for a in (app, public):
        a.router.add_get("/-/healthy", _healthy)
        a.router.add_get("/-/ready", _ready)

    app.cleanup_ctx.append(loop_lag.cleanup_context(metrics.event_loop_lag))
    if config.probe_database_url:
        probe = DatabaseProbe(config.probe_database_url, config.probe_interval_seconds, metrics)
        app.cleanup_ctx.append(probe.context)
    return app


__all__ = [
    "CONFIG",
    "EVENTS",
    "METRICS",
    "PUBLIC",
    "RECORDER",
    "REGISTRY",
    "Rejection",
    "create_app",
]
