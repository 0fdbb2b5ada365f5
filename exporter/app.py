"""The exporter's aiohttp application: ingest endpoints in, /metrics out."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from exporter import beacon_keys, stripe_events
from exporter.config import ExporterConfig
from exporter.edge import ClientAddress, RateLimiter
from exporter.events import (
    BEACON_TYPES,
    BatchTooLarge,
    MalformedBody,
    Rejection,
    decode_events,
)
from exporter.exposition import CachedExposition
from exporter.metrics import ExporterMetrics
from exporter.openapi import openapi_document
from exporter.probe import DatabaseProbe
from exporter.recorder import Recorder
from passiton_common import loop_lag

log = logging.getLogger("exporter")

CONFIG = web.AppKey("config", ExporterConfig)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", ExporterMetrics)
RECORDER = web.AppKey("recorder", Recorder)
PUBLIC = web.AppKey("public", web.Application)

_encode = msgspec.json.Encoder().encode
_JSON_TYPES = ("application/json",)
_BEACON_CONTENT_TYPES = ("application/json", "text/plain")


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_encode(payload), content_type="application/json", headers=headers
    )


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as more than ``limit`` bytes have arrived."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _cut_text(event: Any, length: int) -> Any:
    """A beacon event with its free text (error, url, source) cut to ``length`` characters."""
    long = {
        name: value[:length]
        for name in ("error", "url", "source")
        if isinstance(value := getattr(event, name, None), str) and len(value) > length
    }
    return msgspec.structs.replace(event, **long) if long else event


def _error(status: int, reason: str, message: str, **extra: Any) -> web.Response:
    return _json(status, {"error": reason, "message": message, **extra})


class Ingest:
    """The ingest handlers; one instance per application."""

    def __init__(self, config: ExporterConfig, metrics: ExporterMetrics, recorder: Recorder):
        self.config = config
        self.metrics = metrics
        self.recorder = recorder
        self._token = config.ingest_token.encode()
        self._beacon_limiter = RateLimiter(config.beacon_rate_per_minute, config.beacon_max_clients)
        self._key_limiter = RateLimiter(
            config.beacon_key_rate_per_minute, config.beacon_max_clients
        )
        self._client_address = ClientAddress(config.trusted_proxies)
        self._client_limited = metrics.beacon_rate_limited.labels(limit="client")
        self._key_limited = metrics.beacon_rate_limited.labels(limit="key")
        self._stripe_seen = stripe_events.SeenIds(config.stripe_dedupe_ids)
        self._ingest_events = metrics.ingest_duration.labels(endpoint="events")
        self._ingest_beacon = metrics.ingest_duration.labels(endpoint="beacon")
        self._ingest_stripe = metrics.ingest_duration.labels(endpoint="stripe")

    def _reject_request(self, status: int, reason: str, message: str) -> web.Response:
        self.metrics.events_rejected.labels(type="unknown", reason=reason).inc()
        return _error(status, reason, message)

    def _authorized(self, request: web.Request) -> bool:
        if not self._token:
            return self.config.development
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self._token
        )

    async def _read_body(
        self, request: web.Request, limit: int | None = None
    ) -> bytes | web.Response:
        limit = limit or self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._reject_request(413, "too_large", f"body is over {limit} bytes")
        try:
            async with asyncio.timeout(self.config.body_timeout_seconds):
                body = await _read_at_most(request, limit)
        except TimeoutError:
            self.metrics.body_timeouts.inc()
            response = self._reject_request(
                408, "body_timeout", f"body not received within {self.config.body_timeout_seconds}s"
            )
            response.force_close()
            return response
        if body is None:  # no Content-Length (chunked), and more than the limit arrived
            return self._reject_request(413, "too_large", f"body is over {limit} bytes")
        return body

    def _ingest(self, body: bytes) -> web.Response:
        try:
            events, rejected, is_batch = decode_events(body, self.config.max_batch_events)
        except MalformedBody as exc:
            return self._reject_request(400, "invalid_json", str(exc))
        except BatchTooLarge as exc:
            return self._reject_request(413, "batch_too_large", str(exc))
        self.recorder.record(events)
        self.recorder.count_widget_reports(events, "events")
        return self._outcome(events, rejected, is_batch)

    def _outcome(
        self, events: list[Any], rejected: list[Rejection], is_batch: bool
    ) -> web.Response:
        """Rejected events counted; a single rejected event is a 400 naming the problem, a batch
        is a 202 with what was accepted and what was rejected."""
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
        response = self._ingest(body)
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

    def _rate_limited(self, counter: Any, message: str, cors: dict[str, str]) -> web.Response:
        counter.inc()
        response = self._reject_request(429, "rate_limited", message)
        response.headers.update({"Retry-After": "60", **cors})
        return response

    def _refuse_key(self, status: int, reason: str, message: str, cors: dict[str, str]):
        self.metrics.beacon_key_rejections.labels(reason=reason).inc()
        response = self._reject_request(status, reason, message)
        response.headers.update(cors)
        return response

    async def beacon(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        cors = self._cors_headers(request)
        if request.headers.get("Origin") and not cors:
            return self._reject_request(
                403, "origin_not_allowed", "origin is not in EXPORTER_CORS_ORIGINS"
            )
        secret = self.config.beacon_secret
        if not secret:
            return _error(404, "not_configured", "EXPORTER_BEACON_SECRET is not set")
        client = self._client_address.resolve(
            request.remote, request.headers.get("X-Forwarded-For")
        )
        now = time.monotonic()
        if not self._beacon_limiter.allow(client, now):
            return self._rate_limited(
                self._client_limited, "too many beacons from this client", cors
            )
        key = request.query.get("key", "")
        if not key:
            return self._refuse_key(401, "missing_key", "the beacon key (?key=) is missing", cors)
        if not beacon_keys.well_formed(key):
            return self._refuse_key(403, "malformed_key", "the beacon key is not well formed", cors)
        if request.content_type not in _BEACON_CONTENT_TYPES:
            return self._reject_request(
                415,
                "unsupported_content_type",
                "Content-Type must be text/plain or application/json",
            )
        body = await self._read_body(request, self.config.beacon_max_body_bytes)
        if isinstance(body, web.Response):
            body.headers.update(cors)
            return body
        try:
            events, rejected, is_batch = decode_events(
                body, self.config.beacon_max_events, BEACON_TYPES
            )
        except MalformedBody as exc:
            return self._reject_request(400, "invalid_json", str(exc))
        except BatchTooLarge as exc:
            return self._reject_request(413, "batch_too_large", str(exc))
        pairs = {(e.organization_id, e.widget_id) for e in events}
        if len(pairs) > 1:
            return self._refuse_key(
                403, "key_mismatch", "every event of a beacon must be for the key's widget", cors
            )
        if pairs:
            organization_id, widget_id = pairs.pop()
            if not beacon_keys.verify(secret, organization_id, widget_id, key):
                return self._refuse_key(
                    403, "forged_key", "the key is not this organization's widget key", cors
                )
            if not self._key_limiter.allow(key, now):
                return self._rate_limited(
                    self._key_limited, "too many beacons for this widget", cors
                )
        events = [_cut_text(e, self.config.beacon_text_length) for e in events]
        self.recorder.record(events)
        self.recorder.count_widget_reports(events, "beacon", client)
        response = self._outcome(events, rejected, is_batch)
        response.headers.update(cors)
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
    """The internal application (``/v1/events``, ``/metrics``, OpenAPI, health).

    ``app[PUBLIC]`` is the public application (beacon, ``beacon.js``, Stripe webhook, health),
    served on its own listener and sharing this one's metrics and recorder.
    """
    config.check_startable()
    disable_created_metrics()
    registry = CollectorRegistry()
    metrics = ExporterMetrics.create(
        registry, config.widget_timeout_seconds, database_probe=bool(config.probe_database_url)
    )
    recorder = Recorder(metrics, config)
    ingest = Ingest(config, metrics, recorder)
    app = web.Application(client_max_size=config.max_body_bytes)
    public = web.Application(client_max_size=config.max_body_bytes)
    for a in (app, public):
        a[CONFIG] = config
        a[REGISTRY] = registry
        a[METRICS] = metrics
        a[RECORDER] = recorder
    app[PUBLIC] = public

    beacon_js = resources.files("exporter").joinpath("static/beacon.js").read_bytes()
    openapi = _encode(openapi_document())

    exposition = CachedExposition(metrics.all())
    recorder.on_series_removed.append(exposition.forget)

    async def metrics_handler(_: web.Request) -> web.Response:
        recorder.expire_idle()
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
    app.router.add_get("/v1/openapi.json", openapi_handler)
    app.router.add_get("/metrics", metrics_handler)
    public.router.add_post("/v1/beacon", ingest.beacon)
    public.router.add_route("OPTIONS", "/v1/beacon", ingest.beacon_preflight)
    public.router.add_get("/v1/beacon.js", beacon_script)
    public.router.add_post("/v1/stripe/webhook", ingest.stripe_webhook)
    for a in (app, public):
        a.router.add_get("/-/healthy", healthy)
        a.router.add_get("/-/ready", ready)

    app.cleanup_ctx.append(loop_lag.cleanup_context(metrics.event_loop_lag))
    if config.probe_database_url:
        probe = DatabaseProbe(config.probe_database_url, config.probe_interval_seconds, metrics)
        app.cleanup_ctx.append(probe.context)
    return app


__all__ = ["CONFIG", "METRICS", "PUBLIC", "RECORDER", "REGISTRY", "Rejection", "create_app"]
