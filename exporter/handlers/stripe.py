"""``POST /v1/stripe/webhook``: Stripe's events, signed with the webhook secret."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from exporter import stripe_events
from exporter.config import ExporterConfig
from exporter.edge import ClientAddress, RateLimiter, client_network, forwarded_for
from exporter.handlers.http import Refusal, error_response, json_response, read_body, refuse
from exporter.metrics import ExporterMetrics
from exporter.recorder import Recorder

log = logging.getLogger("exporter")


class StripeWebhook:
    """``POST /v1/stripe/webhook``: rate-limited per client address (a 429 with ``Retry-After``
    before the body is read: Stripe retries it, an anonymous flood is bounded), signature
    verified, duplicates answered once, payment outcomes recorded; one instance per
    application."""

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
        self._clock = clock  # monotonic seconds, for the rate limit
        self._seen = stripe_events.SeenIds(config.stripe_dedupe_ids)
        self._duration = metrics.ingest_duration.labels(endpoint="stripe")
        self._client_address = ClientAddress(config.trusted_proxies)
        self._limiter = RateLimiter(config.stripe_rate_per_minute, config.beacon_max_clients)

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        config = self.config
        secret = config.stripe_webhook_secret
        if not secret:
            return error_response(404, "not_configured", "STRIPE_WEBHOOK_SECRET is not set")
        client = client_network(
            self._client_address.resolve(request.remote, forwarded_for(request.headers))
        )
        if not self._limiter.allow(client, self._clock()):
            self.metrics.stripe_rate_limited.inc()
            response = error_response(
                429, "rate_limited", "too many requests from this client; retry after 60 s"
            )
            response.headers["Retry-After"] = "60"
            return response
        body = await read_body(
            request, config.max_body_bytes, config.body_timeout_seconds, self.metrics
        )
        if isinstance(body, Refusal):
            return refuse(self.metrics, body)
        try:
            event = stripe_events.verify(body, request.headers.get("Stripe-Signature"), secret)
        except stripe_events.SignatureFailure as exc:
            self.metrics.stripe_signature_failures.labels(reason=exc.reason).inc()
            log.warning("stripe signature failure", extra={"reason": exc.reason})
            return error_response(400, exc.reason, str(exc))
        event_id = str(event.get("id", ""))
        if event_id and not self._seen.add(event_id):
            self.metrics.stripe_duplicate_events.inc()
            return json_response(200, {"received": True, "duplicate": True})
        event_type = str(event.get("type", ""))
        self.metrics.stripe_events.labels(
            event_type=self.recorder.stripe_event_type(event_type[:64] or "other")
        ).inc()
        self._record(event)
        self._duration.observe(time.perf_counter() - started)
        return json_response(200, {"received": True, "duplicate": False})

    def _record(self, event: dict[str, Any]) -> None:
        outcome = stripe_events.payment_outcome(event)
        if outcome is None:
            return
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
                    "payment_id": outcome.payment_id,
                }
                if outcome.outcome == "failed"
                else {}
            ),
        )
