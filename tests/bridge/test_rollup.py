"""The hourly history rollup against a small fake of Prometheus's HTTP API (``/api/v1/query``)
and the real storage backends (PostgreSQL). The real Prometheus is in
``tests/e2e/test_dashboards_and_rollup.py``."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from bridge import rollup
from bridge.app import BRIDGE, create_app
from bridge.rollup import HOUR, RollupError, RollupRunner, run_rollup
from bridge.storage import Storage, open_storage
from passiton_common.http_client import async_client
from tests.bridge.support import make_config
from tests.rules.test_grafana import known_series, series_in

HOUR_START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday
ALL_QUERIES = {
    rollup.TRAFFIC_BY_CLIENT,
    rollup.TRAFFIC_BY_COUNTRY,
    rollup.ENDPOINT_REQUESTS,
    *(rollup.ENDPOINT_QUANTILE.format(q=q) for q in (0.5, 0.95, 0.99)),
    rollup.WIDGET_LOADS,
    rollup.WIDGET_ERRORS,
    rollup.WIDGET_P95,
    *rollup.DASHBOARD_QUERIES.values(),
}


class FakePrometheus:
    """Answers instant queries like Prometheus: a vector per known query, empty by default;
    an unknown query is a 400 ``bad_data``, as a syntax error would be."""

    def __init__(self) -> None:
        self.results: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.failure: tuple[int, dict[str, Any]] | None = None
        self.requests: list[tuple[str, float]] = []
        self.delay = 0.0

    def set(self, query: str, *samples: tuple[dict[str, str], float]) -> None:
        assert query in ALL_QUERIES, query
        self.results[query] = list(samples)

    async def handle(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.method == "POST":
            params.update(await request.post())
        query, at = params["query"], float(params["time"])
        self.requests.append((query, at))
        await asyncio.sleep(self.delay)
        if self.failure:
            return web.json_response(self.failure[1], status=self.failure[0])
        if query not in ALL_QUERIES:
            return web.json_response(
                {"status": "error", "errorType": "bad_data", "error": "unexpected query"},
                status=400,
            )
        result = [
            {"metric": labels, "value": [at, "NaN" if math.isnan(v) else repr(v)]}
            for labels, v in self.results.get(query, [])
        ]
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )


@pytest.fixture
async def prometheus(aiohttp_server) -> tuple[FakePrometheus, str]:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_route("*", "/api/v1/query", fake.handle)
    server = await aiohttp_server(app)
    return fake, str(server.make_url(""))


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[Storage]:
    store = open_storage(db_url)
    await store.open()
    await store.migrate()
    yield store
    await store.close()


def feed_an_hour(fake: FakePrometheus, scale: float = 1.0) -> None:
    s = scale
    fake.set(
        rollup.TRAFFIC_BY_CLIENT,
        ({"organization_id": "org-1", "client": "human"}, 100.4 * s),
        ({"organization_id": "org-1", "client": "bot"}, 20.0 * s),
        ({"organization_id": "org-1", "client": "suspicious"}, 2.6 * s),
        ({"organization_id": "org-2", "client": "human"}, 7.0 * s),
    )
    fake.set(
        rollup.TRAFFIC_BY_COUNTRY,
        ({"organization_id": "org-1", "country": "US"}, 80.0 * s),
        ({"organization_id": "org-1", "country": "DE"}, 43.0 * s),
        ({"organization_id": "org-1", "country": "FR"}, 0.2),  # rounds to nothing
        ({"organization_id": "org-2", "country": "unknown"}, 7.0 * s),
    )
    fake.set(
        rollup.ENDPOINT_REQUESTS,
        ({"route": "/api/donations", "method": "POST", "status_class": "2xx"}, 90.0 * s),
        ({"route": "/api/donations", "method": "POST", "status_class": "5xx"}, 10.0 * s),
        ({"route": "/api/donations", "method": "GET", "status_class": "2xx"}, 50.0 * s),
    )
    fake.set(
        rollup.ENDPOINT_QUANTILE.format(q=0.5),
        ({"route": "/api/donations", "method": "POST"}, 0.12),
        ({"route": "/api/donations", "method": "GET"}, math.nan),
    )
    fake.set(
        rollup.ENDPOINT_QUANTILE.format(q=0.95),
        ({"route": "/api/donations", "method": "POST"}, 0.8 * s),
    )
    fake.set(
        rollup.ENDPOINT_QUANTILE.format(q=0.99),
        ({"route": "/api/donations", "method": "POST"}, 2.0),
    )
    fake.set(
        rollup.WIDGET_LOADS,
        ({"organization_id": "org-1", "widget_id": "w-1"}, 300.0 * s),
    )
    fake.set(
        rollup.WIDGET_ERRORS,
        ({"organization_id": "org-1", "widget_id": "w-1", "kind": "load"}, 5.0 * s),
        ({"organization_id": "org-1", "widget_id": "w-1", "kind": "script"}, 1.0 * s),
        ({"organization_id": "org-2", "widget_id": "w-9", "kind": "render"}, 3.0 * s),
    )
    fake.set(rollup.WIDGET_P95, ({"organization_id": "org-1"}, 1.7))
    q = rollup.DASHBOARD_QUERIES
    fake.set(q["uptime_ratio:{service}"], ({"service": "api"}, 0.99 * s), ({"service": "x"}, 1))
    fake.set(q["scrape_up_ratio:{job}"], ({"job": "passiton-exporter"}, 1.0))
    fake.set(q["api_requests"], ({}, 150.0 * s))
    fake.set(q["api_error_ratio"], ({}, 10.0 / 150.0))
    fake.set(q["api_p95_seconds"], ({}, math.nan))
    fake.set(q["payment_attempts"], ({}, 40.0 * s))


async def rows(storage: Storage, table: str) -> list[dict[str, Any]]:
    key = {
        "traffic_baselines": "organization_id",
        "endpoint_metrics": "route, method",
        "widget_analytics": "organization_id, widget_id",
        "dashboard_metrics": "metric",
    }[table]
    return await storage.query(f"SELECT * FROM {table} ORDER BY {key}, hour")  # noqa: S608


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def hour_of(row: dict[str, Any]) -> datetime:
    value = row["hour"]
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


async def test_one_hour_fills_every_history_table(prometheus, storage: Storage) -> None:
    fake, url = prometheus
    feed_an_hour(fake)
    written = await run_rollup(storage, url, HOUR_START)
    assert written.counts() == {
        "traffic_baselines": 2,
        "endpoint_metrics": 2,
        "widget_analytics": 2,
        "dashboard_metrics": 6,
    }

    # every query was evaluated at the end of the hour
    assert {at for _, at in fake.requests} == {(HOUR_START + HOUR).timestamp()}
    assert {q for q, _ in fake.requests} == ALL_QUERIES

    traffic = await rows(storage, "traffic_baselines")
    assert [hour_of(r) for r in traffic] == [HOUR_START, HOUR_START]
    org1, org2 = traffic
    assert (org1["organization_id"], org1["request_count"]) == ("org-1", 123)
    assert (org1["human_count"], org1["bot_count"], org1["suspicious_count"]) == (100, 20, 3)
    assert as_json(org1["country_counts"]) == {"US": 80, "DE": 43}
    assert (org2["request_count"], as_json(org2["country_counts"])) == (7, {"unknown": 7})

    get, post = await rows(storage, "endpoint_metrics")
    assert (post["method"], post["request_count"], post["error_count"]) == ("POST", 100, 10)
    assert (post["p50_seconds"], post["p95_seconds"], post["p99_seconds"]) == (0.12, 0.8, 2.0)
    assert (get["method"], get["request_count"], get["error_count"]) == ("GET", 50, 0)
    assert get["p50_seconds"] is None  # NaN from histogram_quantile is no value

    w1, w9 = await rows(storage, "widget_analytics")
    assert (w1["widget_id"], w1["load_count"], w1["load_error_count"]) == ("w-1", 300, 5)
    assert (w1["script_error_count"], w1["render_error_count"], w1["p95_load_seconds"]) == (
        1,
        0,
        1.7,
    )
    assert (w9["organization_id"], w9["load_count"], w9["render_error_count"]) == ("org-2", 0, 3)
    assert w9["p95_load_seconds"] is None

    dashboard = {r["metric"]: r for r in await rows(storage, "dashboard_metrics")}
    assert set(dashboard) == {
        "uptime_ratio:api",
        "uptime_ratio:x",
        "scrape_up_ratio:passiton-exporter",
        "api_requests",
        "api_error_ratio",
        "payment_attempts",
    }
    assert dashboard["uptime_ratio:api"]["value"] == pytest.approx(0.99)
    assert as_json(dashboard["uptime_ratio:api"]["labels"]) == {"service": "api"}
    assert dashboard["api_error_ratio"]["value"] == pytest.approx(10 / 150)


async def test_rolling_up_an_hour_again_updates_it_in_place(prometheus, storage: Storage) -> None:
    fake, url = prometheus
    feed_an_hour(fake)
    await run_rollup(storage, url, HOUR_START)
    await run_rollup(storage, url, HOUR_START)
    feed_an_hour(fake, scale=2.0)
    await run_rollup(storage, url, HOUR_START)

    traffic = await rows(storage, "traffic_baselines")
    assert len(traffic) == 2
    assert traffic[0]["request_count"] == 246
    assert as_json(traffic[0]["country_counts"]) == {"US": 160, "DE": 86}
    endpoints = await rows(storage, "endpoint_metrics")
    assert [r["request_count"] for r in endpoints] == [100, 200]
    assert len(await rows(storage, "widget_analytics")) == 2
    dashboard = {r["metric"]: r["value"] for r in await rows(storage, "dashboard_metrics")}
    assert len(dashboard) == 6
    assert dashboard["api_requests"] == 300.0

    # the next hour adds rows beside the first hour's
    await run_rollup(storage, url, HOUR_START + HOUR)
    traffic = await rows(storage, "traffic_baselines")
    assert [(r["organization_id"], hour_of(r)) for r in traffic] == [
        ("org-1", HOUR_START),
        ("org-1", HOUR_START + HOUR),
        ("org-2", HOUR_START),
        ("org-2", HOUR_START + HOUR),
    ]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}, "parse error"),
        (503, {"status": "error", "errorType": "unavailable", "error": "starting"}, "starting"),
        (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}, "matrix"),
    ],
)
async def test_a_prometheus_failure_writes_nothing(
    prometheus, storage: Storage, status: int, body: dict, message: str
) -> None:
    fake, url = prometheus
    feed_an_hour(fake)
    fake.failure = (status, body)
    with pytest.raises(RollupError, match=message):
        await run_rollup(storage, url, HOUR_START)
    for table in ("traffic_baselines", "endpoint_metrics", "widget_analytics"):
        assert await rows(storage, table) == []
    assert await storage.query("SELECT * FROM bridge_state WHERE key = 'rollup_last_hour'") == []


async def test_unreachable_prometheus_is_a_rollup_error(storage: Storage, unused_tcp_port) -> None:
    with pytest.raises(RollupError, match="unreachable"):
        await run_rollup(storage, f"http://127.0.0.1:{unused_tcp_port}", HOUR_START)


@pytest.mark.parametrize(
    "hour",
    [
        datetime(2026, 3, 2, 14, 30, tzinfo=UTC),
        datetime(2026, 3, 2, 14, 0),  # no time zone
    ],
)
async def test_the_hour_must_be_a_whole_utc_hour(storage: Storage, hour: datetime) -> None:
    with pytest.raises(ValueError, match="whole hour"):
        await run_rollup(storage, "http://127.0.0.1:9", hour)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_runner_rolls_up_each_completed_hour_once(prometheus, storage: Storage) -> None:
    fake, url = prometheus
    feed_an_hour(fake)
    clock = Clock(datetime(2026, 3, 2, 17, 1, tzinfo=UTC))
    async with async_client() as client:
        runner = RollupRunner(
            storage, url, delay_seconds=120, backfill_hours=3, clock=clock, client=client
        )
        # 17:01 minus the delay is 16:59: the hours ending by then, three at most
        assert await runner.run_once() == [
            datetime(2026, 3, 2, h, tzinfo=UTC) for h in (13, 14, 15)
        ]
        assert await runner.run_once() == []
        clock.now = datetime(2026, 3, 2, 17, 2, 30, tzinfo=UTC)
        assert await runner.run_once() == [datetime(2026, 3, 2, 16, tzinfo=UTC)]

        # Prometheus down: the hour stays due and is done once it answers again
        clock.now = datetime(2026, 3, 2, 18, 5, tzinfo=UTC)
        fake.failure = (503, {"status": "error", "errorType": "unavailable", "error": "down"})
        with pytest.raises(RollupError):
            await runner.run_once()
        fake.failure = None
        assert await runner.run_once() == [datetime(2026, 3, 2, 17, tzinfo=UTC)]

    hours = {hour_of(r) for r in await rows(storage, "traffic_baselines")}
    assert hours == {datetime(2026, 3, 2, h, tzinfo=UTC) for h in range(13, 18)}
    (state,) = await storage.query("SELECT value FROM bridge_state WHERE key = 'rollup_last_hour'")
    assert datetime.fromisoformat(state["value"]) == datetime(2026, 3, 2, 17, tzinfo=UTC)


async def test_runner_never_moves_the_marker_back(prometheus, storage: Storage) -> None:
    """A replica rolling up an older hour (backfill) leaves a newer marker alone."""
    fake, url = prometheus
    feed_an_hour(fake)
    await run_rollup(storage, url, HOUR_START + 3 * HOUR)
    await run_rollup(storage, url, HOUR_START)
    (state,) = await storage.query("SELECT value FROM bridge_state WHERE key = 'rollup_last_hour'")
    assert datetime.fromisoformat(state["value"]) == HOUR_START + 3 * HOUR


async def test_runner_in_the_background_logs_and_keeps_going(
    prometheus, storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = prometheus
    feed_an_hour(fake)
    fake.failure = (503, {"status": "error", "errorType": "unavailable", "error": "down"})
    clock = Clock(datetime(2026, 3, 2, 15, 10, tzinfo=UTC))
    runner = RollupRunner(storage, url, interval_seconds=0.01, backfill_hours=1, clock=clock)
    runner.start()
    try:
        for _ in range(500):
            if len(fake.requests) >= 2 * len(ALL_QUERIES):
                break
            await _sleep()
        assert "history rollup postponed" in caplog.text
        fake.failure = None
        for _ in range(500):
            if await rows(storage, "traffic_baselines"):
                break
            await _sleep()
    finally:
        await runner.stop()
    assert [hour_of(r) for r in await rows(storage, "traffic_baselines")] == [HOUR_START] * 2


async def test_stopping_lets_the_hour_in_progress_finish(prometheus, storage: Storage) -> None:
    fake, url = prometheus
    feed_an_hour(fake)
    fake.delay = 0.2
    clock = Clock(datetime(2026, 3, 2, 17, 10, tzinfo=UTC))
    runner = RollupRunner(storage, url, interval_seconds=3600, backfill_hours=3, clock=clock)
    runner.start()
    for _ in range(500):
        if fake.requests:
            break
        await _sleep()
    await runner.stop()
    # the first due hour (14:00) was completed and recorded, the other two were not started
    assert {hour_of(r) for r in await rows(storage, "traffic_baselines")} == {
        datetime(2026, 3, 2, 14, tzinfo=UTC)
    }
    (state,) = await storage.query("SELECT value FROM bridge_state WHERE key = 'rollup_last_hour'")
    assert datetime.fromisoformat(state["value"]) == datetime(2026, 3, 2, 14, tzinfo=UTC)
    assert len(fake.requests) == len(ALL_QUERIES)


async def _sleep() -> None:
    await asyncio.sleep(0.01)


async def test_an_hour_still_running_is_written_but_stays_due(prometheus, storage) -> None:
    fake, url = prometheus
    feed_an_hour(fake)
    await run_rollup(storage, url, HOUR_START, now=HOUR_START + timedelta(minutes=30))
    assert len(await rows(storage, "traffic_baselines")) == 2
    assert await storage.query("SELECT * FROM bridge_state WHERE key = 'rollup_last_hour'") == []
    runner = RollupRunner(storage, url, clock=Clock(HOUR_START + timedelta(minutes=30)))
    assert runner.due_hours(None, HOUR_START + HOUR + timedelta(minutes=5))[-1] == HOUR_START


def test_due_hours_respects_the_backfill_limit() -> None:
    runner = RollupRunner(None, "", delay_seconds=0, backfill_hours=2)  # type: ignore[arg-type]
    now = datetime(2026, 3, 2, 12, 0, 1, tzinfo=UTC)
    assert runner.due_hours(None, now) == [now.replace(hour=10, second=0), now.replace(
        hour=11, second=0
    )]  # fmt: skip
    long_ago = now - timedelta(days=30)
    assert len(runner.due_hours(long_ago, now)) == 2
    assert runner.due_hours(now.replace(hour=11, second=0), now) == []


async def test_the_bridge_runs_the_rollup_when_started(prometheus, db_url: str, aiohttp_client):
    fake, url = prometheus
    feed_an_hour(fake)
    config = replace(make_config(db_url), prometheus_url=url, rollup_interval_seconds=0.05)
    client = await aiohttp_client(create_app(config, notifiers={}))
    storage = client.app[BRIDGE].storage
    for _ in range(1000):
        if len(await rows(storage, "traffic_baselines")) >= 2 * 24:
            break
        await _sleep()
    # the last 24 completed hours, two organizations each
    traffic = await rows(storage, "traffic_baselines")
    assert len(traffic) == 2 * 24
    latest = max(hour_of(r) for r in traffic)
    assert latest in {rollup.hour_floor(datetime.now(UTC) - timedelta(minutes=2)) - HOUR,
                      rollup.hour_floor(datetime.now(UTC)) - 2 * HOUR}  # fmt: skip


async def test_the_rollup_is_off_at_interval_zero(prometheus, pg_database, aiohttp_client):
    fake, url = prometheus
    config = replace(make_config(pg_database), prometheus_url=url, rollup_interval_seconds=0)
    client = await aiohttp_client(create_app(config, notifiers={}))
    assert (await client.get("/-/ready")).status == 200
    assert fake.requests == []


def test_rollup_queries_name_only_series_that_exist() -> None:

    known = known_series()
    for query in ALL_QUERIES:
        assert series_in(query) <= known, query
