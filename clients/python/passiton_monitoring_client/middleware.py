"""aiohttp middleware reporting every request to the exporter as ``endpoint.request``.

    app = web.Application(middlewares=[monitoring_middleware(monitoring)])

Put it first in the list so it sees the status that other middlewares finally produce. The route
is the matched route's template, never the raw path, so it stays a bounded label; it is written
the way the TypeScript client's Express and Next.js middleware write it: ``/api/donations/{id}``
is reported as ``/api/donations/:id``, ``{tail:.*}`` as ``*``. Requests that match no route are
reported as ``unmatched``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from aiohttp import web

from passiton_monitoring_client.routes import normalize_route

log = logging.getLogger("passiton.monitoring")

UNMATCHED = "unmatched"
CLIENT_CLOSED = 499  # the client went away before the handler finished (nginx's convention)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


class _Dashboard(Protocol):
    def endpoint(self, route: str, duration_ms: float, status: int, method: str = "GET") -> None:
        pass


class MonitoringSink(Protocol):
    @property
    def dashboard(self) -> _Dashboard:
        pass


def route_template(request: web.BaseRequest) -> str:
    match_info = getattr(request, "match_info", None)
    resource = getattr(getattr(match_info, "route", None), "resource", None)
    if resource is None:
        return UNMATCHED
    return normalize_route(resource.canonical) or UNMATCHED


def monitoring_middleware(
    monitoring: MonitoringSink, *, ignore_routes: Iterable[str] = ()
) -> Middleware:
    """Reports route template, method, status and duration of every request.

    ``ignore_routes``: route templates not to report (health checks, ``/metrics``). Exceptions
    from handlers are reported (an ``HTTPException``'s status, else 500) and re-raised; a failing
    ``monitoring`` is logged and never affects the response.
    """
    ignored = frozenset(normalize_route(route) for route in ignore_routes)

    @web.middleware
    async def report_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            duration_ms = (time.perf_counter() - started) * 1000.0
            try:
                route = route_template(request)
                if route not in ignored:
                    monitoring.dashboard.endpoint(route, duration_ms, status, method=request.method)
            except Exception:
                log.exception("monitoring middleware could not report a request")

    return report_request
