"""The hourly history rollup: Prometheus → the metrics tables of PostgreSQL/Supabase.

For each completed hour ``[hour, hour + 1h)`` the bridge asks Prometheus's HTTP API (instant
queries evaluated at ``hour + 1h`` over a ``[1h]`` window) for

- ``traffic_baselines``: requests per organization, split by client class and country;
- ``endpoint_metrics``: requests, 5xx responses and p50/p95/p99 latency per route and method;
- ``widget_analytics``: loads and load/render/script errors per widget, and the p95 load time
  (the load-time histogram is per organization, so each widget row carries its organization's);
- ``dashboard_metrics``: uptime per probed service, scrape uptime of the exporter and the bridge,
  API volume, 5xx ratio and p95, payment volume and failure ratio, database probe uptime;

and upserts the rows on their ``(key, hour)`` primary keys in one transaction, so an hour can be
rolled up again at any time with the same result. The admin platform charts months of history
from these tables (hour of week: ``EXTRACT(ISODOW FROM hour)``, ``EXTRACT(HOUR FROM hour)``)
without Prometheus keeping it.

``RollupRunner`` does this periodically: every ``interval_seconds`` it rolls up each completed
hour after the last one done (kept in ``bridge_state`` under ``rollup_last_hour``), at most
``backfill_hours`` back. Several bridge replicas may run it; at worst two write the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.storage import Storage, StorageUnavailable
from bridge.storage.history import HISTORY_TABLES
from passiton_common.http_client import async_client

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
STATE_KEY = "rollup_last_hour"

# Every query is evaluated at the end of the hour; [1h] covers exactly that hour.
TRAFFIC_BY_CLIENT = (
    "sum by (organization_id, client) (increase(passiton_traffic_requests_total[1h]))"
)
TRAFFIC_BY_COUNTRY = (
    "sum by (organization_id, country) (increase(passiton_traffic_requests_total[1h]))"
)
ENDPOINT_REQUESTS = (
    "sum by (route, method, status_class) "
    "(increase(passiton_endpoint_request_duration_seconds_count[1h]))"
)
ENDPOINT_QUANTILE = (
    "histogram_quantile({q}, sum by (route, method, le) "
    "(increase(passiton_endpoint_request_duration_seconds_bucket[1h])))"
)
WIDGET_LOADS = "sum by (organization_id, widget_id) (increase(passiton_widget_loads_total[1h]))"
WIDGET_ERRORS = (
    "sum by (organization_id, widget_id, kind) (increase(passiton_widget_errors_total[1h]))"
)
WIDGET_P95 = (
    "histogram_quantile(0.95, sum by (organization_id, le) "
    "(increase(passiton_widget_load_duration_seconds_bucket[1h])))"
)
# dashboard_metrics: metric name → query; a ``{label}`` in the name is filled from the result.
DASHBOARD_QUERIES: dict[str, str] = {
    "uptime_ratio:{service}": (
        'avg by (service) (avg_over_time(probe_success{job="passiton-uptime"}[1h]))'
    ),
    "scrape_up_ratio:{job}": (
        'avg by (job) (avg_over_time(up{job=~"passiton-exporter|passiton-bridge"}[1h]))'
    ),
    "api_requests": "sum(increase(passiton_endpoint_request_duration_seconds_count[1h]))",
    "api_error_ratio": (
        'sum(increase(passiton_endpoint_request_duration_seconds_count{status_class="5xx"}[1h]))'
        " / sum(increase(passiton_endpoint_request_duration_seconds_count[1h]))"
    ),
    "api_p95_seconds": (
        "histogram_quantile(0.95, "
        "sum by (le) (increase(passiton_endpoint_request_duration_seconds_bucket[1h])))"
    ),
    "payment_attempts": "sum(increase(passiton_payment_attempts_total[1h]))",
    "payment_failure_ratio": (
        'sum(increase(passiton_payment_attempts_total{outcome!="succeeded"}[1h]))'
        " / sum(increase(passiton_payment_attempts_total[1h]))"
    ),
    "database_probe_up_ratio": "max(avg_over_time(passiton_database_probe_up[1h]))",
}
CLIENT_COLUMNS = {"human": "human_count", "bot": "bot_count", "suspicious": "suspicious_count"}
ERROR_COLUMNS = {
    "load": "load_error_count",
    "render": "render_error_count",
    "script": "script_error_count",
}

Sample = tuple[dict[str, str], float]


class RollupError(Exception):
    """Prometheus could not answer a rollup query; nothing of that hour was written."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _count(value: float) -> int:
    """``increase()`` extrapolates to fractions; the tables keep whole requests."""
    return max(round(value), 0) if math.isfinite(value) else 0


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class PrometheusQuerier:
    """Instant queries against Prometheus's HTTP API (``/api/v1/query``)."""

    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/query"
        self.client = client

    async def vector(self, query: str, at: datetime) -> list[Sample]:
        try:
            response = await self.client.post(
                self.url, data={"query": query, "time": f"{at.timestamp():.3f}"}
            )
        except httpx.HTTPError as exc:
            raise RollupError(f"Prometheus unreachable at {self.url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            detail = body.get("error") or response.text[:200]
            raise RollupError(f"query {query!r} failed ({response.status_code}): {detail}")
        data = body["data"]
        if data.get("resultType") != "vector":
            raise RollupError(f"query {query!r} returned {data.get('resultType')}, not a vector")
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]


@dataclass
class RollupRows:
    """The rows of one hour, per table."""

    hour: datetime
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.tables.items()}


async def collect(prometheus: PrometheusQuerier, hour: datetime) -> RollupRows:
    """Query Prometheus for one hour; the rows to write (nothing is written here)."""
    at = hour + HOUR
    queries = {
        "traffic_client": TRAFFIC_BY_CLIENT,
        "traffic_country": TRAFFIC_BY_COUNTRY,
        "endpoint_requests": ENDPOINT_REQUESTS,
        "endpoint_p50": ENDPOINT_QUANTILE.format(q=0.5),
        "endpoint_p95": ENDPOINT_QUANTILE.format(q=0.95),
        "endpoint_p99": ENDPOINT_QUANTILE.format(q=0.99),
        "widget_loads": WIDGET_LOADS,
        "widget_errors": WIDGET_ERRORS,
        "widget_p95": WIDGET_P95,
        **{f"dashboard:{name}": query for name, query in DASHBOARD_QUERIES.items()},
    }
    names = list(queries)
    results = await asyncio.gather(*(prometheus.vector(queries[n], at) for n in names))
    got: dict[str, list[Sample]] = dict(zip(names, results, strict=True))
    return RollupRows(
        hour,
        {
            "traffic_baselines": _traffic(hour, got["traffic_client"], got["traffic_country"]),
            "endpoint_metrics": _endpoints(hour, got),
            "widget_analytics": _widgets(hour, got),
            "dashboard_metrics": _dashboard(hour, got),
        },
    )


def _traffic(hour: datetime, by_client: list[Sample], by_country: list[Sample]) -> list[dict]:
    rows: dict[str, dict[str, Any]] = {}

    def row(org: str) -> dict[str, Any]:
        return rows.setdefault(
            org,
            {
                "organization_id": org,
                "hour": hour,
                "request_count": 0,
                "human_count": 0,
                "bot_count": 0,
                "suspicious_count": 0,
                "country_counts": {},
            },
        )

    for labels, value in by_client:
        r = row(labels.get("organization_id", ""))
        n = _count(value)
        r["request_count"] += n
        column = CLIENT_COLUMNS.get(labels.get("client", ""))
        if column:
            r[column] += n
    for labels, value in by_country:
        n = _count(value)
        if n:
            countries = row(labels.get("organization_id", ""))["country_counts"]
            country = labels.get("country", "unknown")
            countries[country] = countries.get(country, 0) + n
    return [r for r in rows.values() if r["request_count"] or r["country_counts"]]


def _endpoints(hour: datetime, got: dict[str, list[Sample]]) -> list[dict]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(labels: dict[str, str]) -> dict[str, Any]:
        key = (labels.get("route", ""), labels.get("method", ""))
        return rows.setdefault(
            key,
            {
                "route": key[0],
                "method": key[1],
                "hour": hour,
                "request_count": 0,
                "error_count": 0,
                "p50_seconds": None,
                "p95_seconds": None,
                "p99_seconds": None,
            },
        )

    for labels, value in got["endpoint_requests"]:
        r, n = row(labels), _count(value)
        r["request_count"] += n
        if labels.get("status_class") == "5xx":
            r["error_count"] += n
    for quantile in ("p50", "p95", "p99"):
        for labels, value in got[f"endpoint_{quantile}"]:
            key = (labels.get("route", ""), labels.get("method", ""))
            if key in rows:
                rows[key][f"{quantile}_seconds"] = _finite(value)
    return [r for r in rows.values() if r["request_count"]]


def _widgets(hour: datetime, got: dict[str, list[Sample]]) -> list[dict]:
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)

    def row(labels: dict[str, str]) -> dict[str, Any]:
        key = (labels.get("organization_id", ""), labels.get("widget_id", ""))
        r = rows[key]
        if not r:
            r.update(
                organization_id=key[0],
                widget_id=key[1],
                hour=hour,
                load_count=0,
                load_error_count=0,
                render_error_count=0,
                script_error_count=0,
                p95_load_seconds=None,
            )
        return r

    for labels, value in got["widget_loads"]:
        row(labels)["load_count"] += _count(value)
    for labels, value in got["widget_errors"]:
        column = ERROR_COLUMNS.get(labels.get("kind", ""))
        if column:
            row(labels)[column] += _count(value)
    p95 = {labels.get("organization_id", ""): _finite(v) for labels, v in got["widget_p95"]}
    out = []
    for r in rows.values():
        r["p95_load_seconds"] = p95.get(r["organization_id"])
        if (
            r["load_count"]
            or r["load_error_count"]
            or r["render_error_count"]
            or r["script_error_count"]
        ):
            out.append(r)
    return out


def _dashboard(hour: datetime, got: dict[str, list[Sample]]) -> list[dict]:
    rows = []
    for template in DASHBOARD_QUERIES:
        for labels, value in got[f"dashboard:{template}"]:
            if not math.isfinite(value):
                continue
            try:
                metric = template.format_map(labels)
            except KeyError:  # the grouping label is missing: not a series this metric is about
                continue
            rows.append({"metric": metric, "hour": hour, "value": value, "labels": labels})
    return rows


async def write(storage: Storage, rows: RollupRows, now: datetime) -> None:
    """Upsert one hour's rows and, once the hour is over, advance the marker; one transaction.

    An hour still running (an operator's ad hoc rollup) is written but stays due, so the runner
    rolls it up again, complete, after it ends."""
    async with storage.transaction() as tx:
        for table, table_rows in rows.tables.items():
            if table_rows:
                await tx.upsert_history(HISTORY_TABLES[table], table_rows, now)
        if now >= rows.hour + HOUR:
            done = await tx.get_state(STATE_KEY)
            if done is None or datetime.fromisoformat(done) < rows.hour:
                await tx.set_state(STATE_KEY, rows.hour.isoformat(), now)


async def run_rollup(
    storage: Storage,
    prometheus_url: str,
    hour: datetime,
    *,
    client: httpx.AsyncClient | None = None,
    now: datetime | None = None,
) -> RollupRows:
    """Roll up the hour starting at ``hour`` (a whole UTC hour); the rows written.

    Raises ``RollupError`` when Prometheus fails (then nothing is written) and
    ``StorageUnavailable`` when the database does."""
    if hour.tzinfo is None or hour != hour_floor(hour):
        raise ValueError(f"hour must be a whole hour with a time zone, got {hour!r}")
    hour = hour.astimezone(UTC)
    owns_client = client is None
    client = client or async_client(timeout=30.0)
    try:
        rows = await collect(PrometheusQuerier(prometheus_url, client), hour)
    finally:
        if owns_client:
            await client.aclose()
    await write(storage, rows, now or utc_now())
    log.info("history rolled up", extra={"hour": hour.isoformat(), "rows": rows.counts()})
    return rows


class RollupRunner:
    """Runs the rollup of every completed hour, periodically, inside the bridge."""

    def __init__(
        self,
        storage: Storage,
        prometheus_url: str,
        *,
        interval_seconds: float = 300.0,
        delay_seconds: float = 120.0,
        backfill_hours: int = 24,
        clock: Callable[[], datetime] = utc_now,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.storage = storage
        self.prometheus_url = prometheus_url
        self.interval_seconds = interval_seconds
        # an hour is rolled up only once its last scrapes and rule evaluations are in
        self.delay = timedelta(seconds=delay_seconds)
        self.backfill_hours = backfill_hours
        self.clock = clock
        self.client = client
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def due_hours(self, last_done: datetime | None, now: datetime) -> list[datetime]:
        """The completed hours not rolled up yet, oldest first, at most ``backfill_hours``."""
        latest = hour_floor(now - self.delay) - HOUR
        earliest = latest - (self.backfill_hours - 1) * HOUR
        start = max(earliest, last_done + HOUR) if last_done else earliest
        hours = []
        while start <= latest:
            hours.append(start)
            start += HOUR
        return hours

    async def run_once(self) -> list[datetime]:
        """Roll up every due hour; the hours done. Stops at the first failure, or when the
        runner is being stopped."""
        async with self.storage.transaction() as tx:
            raw = await tx.get_state(STATE_KEY)
        last_done = datetime.fromisoformat(raw) if raw else None
        done = []
        for hour in self.due_hours(last_done, self.clock()):
            if self._stopping.is_set():
                break
            await run_rollup(
                self.storage, self.prometheus_url, hour, client=self.client, now=self.clock()
            )
            done.append(hour)
        return done

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except (RollupError, StorageUnavailable) as exc:
                log.warning("history rollup postponed", extra={"error": str(exc)})
            except Exception:
                log.exception("history rollup failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_seconds)

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name="history-rollup")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the hour being written finish (a transaction is never cut in the middle), then
        stop; cancel only after ``grace_seconds``."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
