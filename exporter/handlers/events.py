"""``POST /v1/events``: the platform's events, behind the ingest token."""

from __future__ import annotations

import hmac
import time

from aiohttp import web

from exporter.config import ExporterConfig
from exporter.events import BatchTooLarge, MalformedBody, decode_events
from exporter.handlers.http import Refusal, outcome, read_body, refuse
from exporter.metrics import ExporterMetrics
from exporter.recorder import SLICE_EVENTS, Recorder
from exporter.series import observe

_JSON = "application/json"


class EventsHandler:
    """``POST /v1/events``; one instance per application."""

    def __init__(
        self, config: ExporterConfig, metrics: ExporterMetrics, recorder: Recorder
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.recorder = recorder
        self._token = config.ingest_token.encode()
        # the header as clients send it (``Bearer <token>``), compared whole first
        self._header = f"Bearer {config.ingest_token}" if config.ingest_token.isascii() else None
        self._duration = metrics.ingest_duration.labels(endpoint="events")

    def _authorized(self, request: web.BaseRequest) -> bool:
        if not self._token:
            return self.config.development
        header = request.headers.get("Authorization", "")
        # constant time either way: the usual header compared as it is, else taken apart
        expected = self._header
        if expected is not None and header.isascii() and hmac.compare_digest(header, expected):
            return True
        scheme, _, credentials = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self._token
        )

    async def handle(self, request: web.BaseRequest) -> web.Response:
        """The handler; served straight from the listener's server, without the router
        (``exporter.server``), so it reads nothing of the application's."""
        started = time.perf_counter()
        if not self._authorized(request):
            return refuse(
                self.metrics, Refusal(401, "unauthorized", "missing or wrong bearer token")
            )
        # the header as clients send it, else parsed (parameters, case)
        if request.headers.get("Content-Type") != _JSON and request.content_type != _JSON:
            return refuse(
                self.metrics,
                Refusal(415, "unsupported_content_type", "Content-Type must be application/json"),
            )
        config = self.config
        body = await read_body(
            request, config.max_body_bytes, config.body_timeout_seconds, self.metrics
        )
        if isinstance(body, Refusal):
            return refuse(self.metrics, body)
        try:
            events, rejected, is_batch = decode_events(body, config.max_batch_events)
        except MalformedBody as exc:
            response = refuse(self.metrics, Refusal(400, exc.reason, str(exc)))
        except BatchTooLarge as exc:
            response = refuse(self.metrics, Refusal(413, "batch_too_large", str(exc)))
        else:
            recorder = self.recorder
            if len(events) > SLICE_EVENTS:
                await recorder.record_sliced(events)
            else:  # recorded in one pass anyway: no coroutine to run
                recorder.record(events)
            recorder.widget_reports.count(events, "events")
            response = outcome(self.metrics, events, rejected, is_batch)
        observe(self._duration, time.perf_counter() - started)
        return response
