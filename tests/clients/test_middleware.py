"""The aiohttp middleware in a real aiohttp app, reporting into a recording sink."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from passiton_monitoring_client import Monitoring
from passiton_monitoring_client.middleware import monitoring_middleware


@dataclass
class Report:
    route: str
    duration_ms: float
    status: int
    method: str


@dataclass
class RecordingDashboard:
    reports: list[Report] = field(default_factory=list)

    def endpoint(self, route: str, duration_ms: float, status: int, method: str = "GET") -> None:
        self.reports.append(Report(route, duration_ms, status, method))


@dataclass
class Sink:
    dashboard: RecordingDashboard = field(default_factory=RecordingDashboard)

    @property
    def reports(self) -> list[tuple[str, str, int]]:
        return [(r.route, r.method, r.status) for r in self.dashboard.reports]


class Boom(RuntimeError):
    pass


def build_app(sink: Any, seen_exceptions: list[BaseException], **options: Any) -> web.Application:
    @web.middleware
    async def outermost(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except BaseException as exc:
            seen_exceptions.append(exc)
            raise

    routes = web.RouteTableDef()

    @routes.get("/api/donations/{id}")
    async def donation(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"]})

    @routes.post("/api/donations")
    async def create(request: web.Request) -> web.Response:
        return web.json_response({}, status=201)

    @routes.get(r"/api/items/{item:\d+}")
    async def item(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    @routes.get("/forbidden")
    async def forbidden(request: web.Request) -> web.Response:
        raise web.HTTPForbidden()

    @routes.get("/redirect")
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/api/donations/1")

    @routes.get("/crash")
    async def crash(request: web.Request) -> web.Response:
        raise Boom("handler bug")

    @routes.get("/stream")
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=206)
        await response.prepare(request)
        await response.write(b"partial")
        return response

    @routes.get("/-/healthy")
    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[outermost, monitoring_middleware(sink, **options)])
    app.add_routes(routes)

    admin = web.Application()

    async def admin_user(request: web.Request) -> web.Response:
        return web.Response(text="user")

    admin.router.add_get("/users/{user_id}", admin_user)
    app.add_subapp("/admin", admin)
    return app


@pytest.fixture
async def app_client(aiohttp_client: Any) -> tuple[TestClient, Sink, list[BaseException]]:
    sink = Sink()
    seen: list[BaseException] = []
    client = await aiohttp_client(build_app(sink, seen, ignore_routes=["/-/healthy"]))
    return client, sink, seen


async def test_reports_route_templates_methods_and_statuses(
    app_client: tuple[TestClient, Sink, list[BaseException]],
) -> None:
    client, sink, _ = app_client
    for method, path, expected in [
        ("GET", "/api/donations/42", 200),
        ("POST", "/api/donations", 201),
        ("GET", "/api/items/7", 200),
        ("GET", "/admin/users/alice", 200),
        ("GET", "/stream", 206),
    ]:
        async with client.request(method, path, allow_redirects=False) as response:
            assert response.status == expected
            await response.read()
    assert sink.reports == [
        ("/api/donations/:id", "GET", 200),
        ("/api/donations", "POST", 201),
        ("/api/items/:item", "GET", 200),
        ("/admin/users/:user_id", "GET", 200),
        ("/stream", "GET", 206),
    ]
    assert all(
        r.duration_ms >= 0 and isinstance(r.duration_ms, float) for r in sink.dashboard.reports
    )


async def test_unmatched_requests_are_reported_without_their_path(
    app_client: tuple[TestClient, Sink, list[BaseException]],
) -> None:
    client, sink, _ = app_client
    assert (await client.get("/wp-login.php?x=1")).status == 404
    assert (await client.delete("/api/donations/1")).status == 405
    assert sink.reports == [("unmatched", "GET", 404), ("unmatched", "DELETE", 405)]


async def test_http_exceptions_report_their_status_and_propagate(
    app_client: tuple[TestClient, Sink, list[BaseException]],
) -> None:
    client, sink, seen = app_client
    assert (await client.get("/forbidden")).status == 403
    assert (await client.get("/redirect", allow_redirects=False)).status == 302
    assert sink.reports == [("/forbidden", "GET", 403), ("/redirect", "GET", 302)]
    assert [type(exc) for exc in seen] == [web.HTTPForbidden, web.HTTPFound]


async def test_other_exceptions_are_reported_as_500_and_reraised(
    app_client: tuple[TestClient, Sink, list[BaseException]],
) -> None:
    client, sink, seen = app_client
    assert (await client.get("/crash")).status == 500
    assert sink.reports == [("/crash", "GET", 500)]
    assert len(seen) == 1
    assert isinstance(seen[0], Boom)


async def test_ignored_routes_are_not_reported(
    app_client: tuple[TestClient, Sink, list[BaseException]],
) -> None:
    client, sink, _ = app_client
    assert (await client.get("/-/healthy")).status == 200
    assert sink.reports == []


class BrokenDashboard:
    def endpoint(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError("monitoring bug")


class BrokenSink:
    dashboard = BrokenDashboard()


class SinkWithoutDashboard:
    @property
    def dashboard(self) -> Any:
        raise AttributeError("no dashboard")


@pytest.mark.parametrize("sink", [BrokenSink(), SinkWithoutDashboard()])
async def test_a_misbehaving_monitoring_never_breaks_the_app(
    aiohttp_client: Any, sink: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[BaseException] = []
    client = await aiohttp_client(build_app(sink, seen))
    response = await client.get("/api/donations/3")
    assert response.status == 200
    assert await response.json() == {"id": "3"}
    assert (await client.get("/forbidden")).status == 403
    assert (await client.get("/crash")).status == 500
    assert [type(exc) for exc in seen] == [web.HTTPForbidden, Boom]
    assert "could not report a request" in caplog.text


async def test_a_cancelled_handler_is_reported_as_client_closed() -> None:
    sink = Sink()
    middleware = monitoring_middleware(sink)
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        raise asyncio.CancelledError

    app.router.add_get("/slow/{n}", handler)
    request = make_mocked_request("GET", "/slow/1", app=app)
    request._match_info = await app.router.resolve(request)  # what the app does before middlewares
    with pytest.raises(asyncio.CancelledError):
        await middleware(request, handler)
    assert sink.reports == [("/slow/:n", "GET", 499)]


async def test_with_the_real_client_events_reach_an_exporter(aiohttp_client: Any) -> None:
    received: list[dict[str, Any]] = []

    async def events(request: web.Request) -> web.Response:
        batch = await request.json()
        received.extend(batch)
        return web.json_response({"accepted": len(batch), "rejected": 0, "errors": []}, status=202)

    collector = web.Application()
    collector.router.add_post("/v1/events", events)
    collector_server = TestServer(collector)
    await collector_server.start_server()
    try:
        async with Monitoring(str(collector_server.make_url("")), flush_interval=3600) as m:
            client = await aiohttp_client(build_app(m, []))
            assert (await client.get("/api/donations/9")).status == 200
            assert (await client.get("/crash")).status == 500
            assert await m.aflush(10)
    finally:
        await collector_server.close()
    assert [(e["type"], e["route"], e["method"], e["status"]) for e in received] == [
        ("endpoint.request", "/api/donations/:id", "GET", 200),
        ("endpoint.request", "/crash", "GET", 500),
    ]
