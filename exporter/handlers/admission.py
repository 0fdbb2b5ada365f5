"""The exporter's public listener's global admission: every request to the public application
(beacon, ``beacon.js``, Stripe webhook, health) takes its turn under
``EXPORTER_PUBLIC_RATE_PER_SECOND`` before its route's handler runs; a request whose turn is
further than ``EXPORTER_PUBLIC_MAX_WAIT_SECONDS`` away is answered 503 ``overloaded`` with
``Retry-After``. Both outcomes are counted in
``passiton_exporter_public_throttled_total{outcome="delayed"|"shed"}``. Why a turn and not a
refusal, and how the rules read the counts: passiton_common/admission.py.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from exporter.config import ExporterConfig
from exporter.handlers.http import error_response
from exporter.metrics import ExporterMetrics
from passiton_common.admission import GlobalRate, Middleware, admission_middleware


def public_admission(
    config: ExporterConfig, metrics: ExporterMetrics, clock: Callable[[], float]
) -> Middleware:
    """The public application's middleware (one per application: it holds the rate)."""

    def overloaded() -> web.StreamResponse:
        return error_response(
            503, "overloaded", "the public listener is over its request rate; retry later"
        )

    return admission_middleware(
        GlobalRate(config.public_rate_per_second, config.public_max_wait_seconds),
        clock,
        throttled=metrics.public_throttled,
        overloaded=overloaded,
    )
