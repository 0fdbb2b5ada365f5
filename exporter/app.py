"""The exporter's aiohttp application: ingest endpoints in, /metrics out."""

from __future__ import annotations

import hmac
import logging
import time
from collections import OrderedDict
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from exporter import stripe_events
from exporter.config import ExporterConfig
from exporter.events import (
    BEACON_TYPES,
    BatchTooLarge,
    MalformedBody,
    Rejection,
    TrafficRequest,
    decode_events,
)
from exporter.exposition import CachedExposition
from exporter.metrics import ExporterMetrics
from exporter.openapi import openapi_document
from exporter.probe import DatabaseProbe
from exporter.recorder import Recorder

log = logging.getLogger("exporter")

CONFIG = web.AppKey("config", ExporterConfig)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", ExporterMetrics)
RECORDER = web.AppKey("recorder", Recorder)

_encode = msgspec.json.Encoder().encode
_JSON_TYPES = ("application/json",)
_BEACON_CONTENT_TYPES = ("application/json", "text/plain")


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_encode(payload), content_type="application/json", headers=headers
    )


def _error(status: int, reason: str, message: str, **extra: Any) -> web.Response:
    return _json(status, {"error": reason, "message": message, **extra})


class _RateLimiter:
    """Token bucket per client address, for at most ``max_clients`` addresses (LRU)."""

    def __init__(self, per_minute: int, max_clients: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._max = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str, now: float) -> bool:
        tokens, last = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return allowed


class Ingest:
    """The ingest handlers; one instance per application."""

    def __init__(self, config: ExporterConfig, metrics: ExporterMetrics, recorder: Recorder):
        self.config = config
        self.metrics = metrics
        self.recorder = recorder
        self._token = config.ingest_token.encode()
        self._beacon_limiter = _RateLimiter(
            config.beacon_rate_per_minute, config.beacon_max_clients
        )
        self._stripe_seen = stripe_events.SeenIds(config.stripe_dedupe_ids)
        self._ingest_events = metrics.ingest_duration.labels(endpoint="events")
        self._ingest_beacon = metrics.ingest_duration.labels(endpoint="beacon")
        self._ingest_stripe = metrics.ingest_duration.labels(endpoint="stripe")

    def _reject_request(self, status: int, reason: str, message: str) -> web.Response:
        self.metrics.events_rejected.labels(type="unknown", reason=reason).inc()
        return _error(status, reason, message)

    def _authorized(self, request: web.Request) -> bool:
        if not self._token:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self._token
        )

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._reject_request(413, "too_large", f"body is over {limit} bytes")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject_request(413, "too_large", f"body is over {limit} bytes")

    def _ingest(
        self, body: bytes, allowed: frozenset[str] | None, remote: str | None
    ) -> web.Response:
        try:
            events, rejected, is_batch = decode_events(body, self.config.max_batch_events, allowed)
        except MalformedBody as exc:
            return self._reject_request(400, "invalid_json", str(exc))
        except BatchTooLarge as exc:
            return self._reject_request(413, "batch_too_large", str(exc))
        if remote is not None:
            # A browser's claim about its own address is not trusted; the connection's is.
            events = [
                msgspec.structs.replace(e, ip=remote) if isinstance(e, TrafficRequest) else e
                for e in events
            ]
        self.recorder.record(events)
        if rejected:
            counter = self.metrics.events_rejected
            for r in rejected:
                counter.labels(type=r.type, reason=r.reason).inc()
        if not is_batch and rejected:
            r = rejected[0]
            return _json(
                400,
                {
                    "error": r.reason,
                    "message": r.message,
                    "accepted": 0,
                    "rejected": 1,
                    "errors": [r],
                },
            )
        return _json(202, {"accepted": len(events), "rejected": len(rejected), "errors": rejected})

    async def events(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        if not self._authorized(request):
            return self._reject_request(401, "unauthorized", "missing or wrong bearer token")
        if request.content_type not in _JSON_TYPES:
            return self._reject_request(
                415, "unsupported_content_type", "Content-Type must be application/json"
            )
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        response = self._ingest(body, None, None)
        self._ingest_events.observe(time.perf_counter() - started)
        return response

    def _cors_headers(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        allowed = self.config.cors_origins
        if origin and (origin in allowed or "*" in allowed):
            return {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "86400",
                "Vary": "Origin",
            }
        return {}

    async def beacon_preflight(self, request: web.Request) -> web.Response:
        headers = self._cors_headers(request)
        if not headers:
            return _error(403, "origin_not_allowed", "origin is not in EXPORTER_CORS_ORIGINS")
        return web.Response(status=204, headers=headers)

    async def beacon(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        headers = self._cors_headers(request)
        if request.headers.get("Origin") and not headers:
            return self._reject_request(
                403, "origin_not_allowed", "origin is not in EXPORTER_CORS_ORIGINS"
            )
        remote = request.remote or "unknown"
        if not self._beacon_limiter.allow(remote, time.monotonic()):
            self.metrics.beacon_rate_limited.inc()
            response = self._reject_request(
                429, "rate_limited", "too many beacons from this client"
            )
            response.headers.update({"Retry-After": "60", **headers})
            return response
        if request.content_type not in _BEACON_CONTENT_TYPES:
            return self._reject_request(
                415,
                "unsupported_content_type",
                "Content-Type must be text/plain or application/json",
            )
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        response = self._ingest(body, BEACON_TYPES, remote)
        response.headers.update(headers)
        self._ingest_beacon.observe(time.perf_counter() - started)
        return response

    async def stripe_webhook(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        secret = self.config.stripe_webhook_secret
        if not secret:
            return _error(404, "not_configured", "STRIPE_WEBHOOK_SECRET is not set")
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            event = stripe_events.verify(body, request.headers.get("Stripe-Signature"), secret)
        except stripe_events.SignatureFailure as exc:
            self.metrics.stripe_signature_failures.labels(reason=exc.reason).inc()
            log.warning("stripe signature failure", extra={"reason": exc.reason})
            return _error(400, exc.reason, str(exc))
        event_id = str(event.get("id", ""))
        if event_id and not self._stripe_seen.add(event_id):
            self.metrics.stripe_duplicate_events.inc()
            return _json(200, {"received": True, "duplicate": True})
        event_type = str(event.get("type", ""))
        self.metrics.stripe_events.labels(
            event_type=self.recorder.stripe_event_type(event_type[:64] or "other")
        ).inc()
        outcome = stripe_events.payment_outcome(event)
        if outcome is not None:
            self.recorder.record_stripe_payment(
                outcome.organization_id,
                outcome.outcome,
                **(
                    {
                        "amount": outcome.amount,
                        "currency": outcome.currency,
                        "decline_code": outcome.decline_code,
                        "failure_code": outcome.failure_code,
                        "error": outcome.error,
                    }
                    if outcome.outcome == "failed"
                    else {}
                ),
            )
        self._ingest_stripe.observe(time.perf_counter() - started)
        return _json(200, {"received": True, "duplicate": False})


def create_app(config: ExporterConfig) -> web.Application:
    disable_created_metrics()
    registry = CollectorRegistry()
    metrics = ExporterMetrics.create(
        registry, config.widget_timeout_seconds, database_probe=bool(config.probe_database_url)
    )
    recorder = Recorder(metrics, config)
    ingest = Ingest(config, metrics, recorder)
    app = web.Application(client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[REGISTRY] = registry
    app[METRICS] = metrics
    app[RECORDER] = recorder

    beacon_js = resources.files("exporter").joinpath("static/beacon.js").read_bytes()
    openapi = _encode(openapi_document())

    exposition = CachedExposition(metrics.all())

    async def metrics_handler(_: web.Request) -> web.Response:
        return web.Response(body=exposition.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="Ready\n")

    async def beacon_script(_: web.Request) -> web.Response:
        return web.Response(
            body=beacon_js,
            content_type="application/javascript",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def openapi_handler(_: web.Request) -> web.Response:
        return web.Response(body=openapi, content_type="application/json")

    app.router.add_post("/v1/events", ingest.events)
    app.router.add_post("/v1/beacon", ingest.beacon)
    app.router.add_route("OPTIONS", "/v1/beacon", ingest.beacon_preflight)
    app.router.add_get("/v1/beacon.js", beacon_script)
    app.router.add_post("/v1/stripe/webhook", ingest.stripe_webhook)
    app.router.add_get("/v1/openapi.json", openapi_handler)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)

    if config.probe_database_url:
        probe = DatabaseProbe(config.probe_database_url, config.probe_interval_seconds, metrics)
        app.cleanup_ctx.append(probe.context)
    return app


__all__ = ["CONFIG", "METRICS", "RECORDER", "REGISTRY", "Rejection", "create_app"]
