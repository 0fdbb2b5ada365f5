"""``POST /v1/beacon``, its CORS preflight and ``GET /v1/beacon.js``: widget events from web
pages. The checks are the gate's (``beacon_gate.py``); every answer to an allowed origin carries
the CORS headers, refusals included, so that the page can read why it was refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources

from aiohttp import web

from exporter.config import ExporterConfig
from exporter.edge import ClientAddress, client_network, forwarded_for
from exporter.handlers.beacon_gate import (
    BeaconGate,
    BeaconRefusal,
    BeaconRequest,
    Refusal,
    origin_allowed,
)
from exporter.handlers.http import error_response, outcome, read_body, refuse
from exporter.metrics import ExporterMetrics
from exporter.recorder import Recorder


def cors_headers(origin: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """The CORS headers for an allowed origin; none for another origin or none at all."""
    if origin and origin_allowed(origin, allowed):
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
            "Vary": "Origin",
        }
    return {}


class BeaconHandler:
    """``POST /v1/beacon`` and its preflight; one instance per application."""

    def __init__(
        self,
        config: ExporterConfig,
        metrics: ExporterMetrics,
        recorder: Recorder,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.recorder = recorder
        self.clock = clock  # monotonic seconds, for the rate limits
        self.gate = BeaconGate(config)
        self._client_address = ClientAddress(config.trusted_proxies)
        self._rate_limited = {
            limit: metrics.beacon_rate_limited.labels(limit=limit) for limit in ("client", "key")
        }
        self._duration = metrics.ingest_duration.labels(endpoint="beacon")

    async def preflight(self, request: web.Request) -> web.Response:
        headers = cors_headers(request.headers.get("Origin"), self.config.cors_origins)
        if not headers:
            return error_response(
                403, "origin_not_allowed", "origin is not in EXPORTER_CORS_ORIGINS"
            )
        return web.Response(status=204, headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        config = self.config
        origin = request.headers.get("Origin")
        cors = cors_headers(origin, config.cors_origins)
        # one IPv6 /64 is one client, for the rate limit and the sketch of failing clients alike
        client = client_network(
            self._client_address.resolve(request.remote, forwarded_for(request.headers))
        )
        beacon = BeaconRequest(
            origin=origin,
            client=client,
            key=request.query.get("key", ""),
            content_type=request.content_type,
            now=self.clock(),
        )

        async def read(limit: int) -> bytes | Refusal:
            return await read_body(request, limit, config.body_timeout_seconds, self.metrics)

        verdict = await self.gate.check(beacon, read)
        if isinstance(verdict, Refusal):
            return self._refuse(verdict, cors)
        self.recorder.record(verdict.events)
        self.recorder.widget_reports.count(verdict.events, "beacon", client)
        response = outcome(self.metrics, verdict.events, verdict.rejected, verdict.is_batch)
        response.headers.update(cors)
        self._duration.observe(time.perf_counter() - started)
        return response

    def _refuse(self, refusal: Refusal, cors: dict[str, str]) -> web.Response:
        headers = cors
        if isinstance(refusal, BeaconRefusal):
            if refusal.key:
                self.metrics.beacon_key_rejections.labels(reason=refusal.reason).inc()
            if refusal.rate_limit:
                self._rate_limited[refusal.rate_limit].inc()
                headers = {"Retry-After": "60", **cors}
        return refuse(self.metrics, refusal, headers)


class BeaconScript:
    """``GET /v1/beacon.js``: the script web pages embed, read once."""

    def __init__(self) -> None:
        self._body = resources.files("exporter").joinpath("static/beacon.js").read_bytes()

    async def handle(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self._body,
            content_type="application/javascript",
            headers={"Cache-Control": "public, max-age=3600"},
        )
