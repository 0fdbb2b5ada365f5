"""What the handlers share: JSON answers, refusals, the bounded body read, and the one outcome of
the events and beacon endpoints."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from exporter.events import Rejection
from exporter.metrics import ExporterMetrics

encode = msgspec.json.Encoder().encode


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=encode(payload), content_type="application/json", headers=headers
    )


def error_response(status: int, reason: str, message: str, **extra: Any) -> web.Response:
    return json_response(status, {"error": reason, "message": message, **extra})


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused before its events are recorded: answered ``{"error": reason, "message":
    message}`` with ``status``."""

    status: int
    reason: str
    message: str
    counted: bool = True  # in passiton_exporter_events_rejected_total{type="unknown"}
    close: bool = False  # the connection is closed after the answer (a stalled body)


def refuse(
    metrics: ExporterMetrics, refusal: Refusal, headers: dict[str, str] | None = None
) -> web.Response:
    """The answer to a refusal, counted when it counts."""
    if refusal.counted:
        metrics.events_rejected.labels(type="unknown", reason=refusal.reason).inc()
    response = error_response(refusal.status, refusal.reason, refusal.message)
    if headers:
        response.headers.update(headers)
    if refusal.close:
        response.force_close()
    return response


async def read_at_most(request: web.BaseRequest, limit: int) -> bytes | None:
    """The body, or None as soon as more than ``limit`` bytes have arrived."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(
    request: web.BaseRequest, limit: int, seconds: float, metrics: ExporterMetrics
) -> bytes | Refusal:
    """The body; a refusal when it is over ``limit`` bytes (413) or has not all arrived within
    ``seconds`` (408, counted in the body timeouts, connection closed)."""
    length = request.content_length
    if length is not None and length > limit:
        return Refusal(413, "too_large", f"body is over {limit} bytes")
    content = request.content
    head = b""
    if length is not None and content.is_eof():
        # the whole body arrived with the head (the common small request): nothing to wait for,
        # no timer to arm, no coroutine to run
        head = content.read_nowait()
        if len(head) > limit:  # a compressed body, decompressed
            return Refusal(413, "too_large", f"body is over {limit} bytes")
        if content.at_eof():
            return head
        # more came out than was buffered (a compressed body): the rest under the timer
    too_large = Refusal(413, "too_large", f"body is over {limit} bytes")
    try:
        async with asyncio.timeout(seconds):
            body = await read_at_most(request, limit - len(head))
    except TimeoutError:
        metrics.body_timeouts.inc()
        return Refusal(408, "body_timeout", f"body not received within {seconds}s", close=True)
    if body is None:  # no Content-Length (chunked), and more than the limit arrived
        return too_large
    return head + body if head else body


def outcome(
    metrics: ExporterMetrics, events: list[Any], rejected: list[Rejection], is_batch: bool
) -> web.Response:
    """Rejected events counted; a single rejected event is a 400 naming the problem, a batch is a
    202 with what was accepted and what was rejected."""
    if rejected:
        counter = metrics.events_rejected
        for r in rejected:
            counter.labels(type=r.type, reason=r.reason).inc()
    if not is_batch and rejected:
        r = rejected[0]
        return json_response(
            400,
            {
                "error": r.reason,
                "message": r.message,
                "accepted": 0,
                "rejected": 1,
                "errors": [r],
            },
        )
    if not rejected:
        return web.Response(status=202, body=_accepted_body(len(events)), headers=_JSON_HEADERS)
    return json_response(
        202, {"accepted": len(events), "rejected": len(rejected), "errors": rejected}
    )


_JSON_HEADERS = {"Content-Type": "application/json"}


@functools.lru_cache(maxsize=64)
def _accepted_body(accepted: int) -> bytes:
    """The answer to a request whose every event was accepted (the common one), encoded once."""
    return encode({"accepted": accepted, "rejected": 0, "errors": []})
