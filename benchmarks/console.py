"""Console benchmark: history and review pages over 1,000,000 alert rows on PostgreSQL.

A temporary database gets the bridge's migrations and N alert rows (default 1,000,000, spread
evenly over the five alert tables and the last 365 days, 200 organizations, 12 alert names; one
in ten acknowledged), written server-side with ``generate_series``, then ANALYZE. The bridge
application (console included) serves on a local port; a logged-in client times each page.
The baseline, run side by side in the same process, is ``GET /-/healthy`` (the HTTP round trip
and the framework, no database); each page is reported as p50/p99 in milliseconds and as a
ratio of its p50 to the baseline's.

Run: `.venv/bin/python benchmarks/console.py [--rows 1000000] [--requests 50]` (PostgreSQL at
PASSITON_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.config import BridgeConfig
from bridge.storage import ALERT_TABLES, open_storage
from console.auth import hash_password
from passiton_monitoring.bridge_process import create_bridge_app

ADMIN = os.environ.get("PASSITON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "benchmark password"
NAMES = (
    "PaymentFailureRatioHigh",
    "PaymentTimeoutsHigh",
    "PaymentProcessingErrorsSpike",
    "WidgetLoadErrorRatioHigh",
    "WidgetSlowLoads",
    "WidgetScriptErrors",
    "TrafficBotShareHigh",
    "TrafficDropped",
    "TrafficSpike",
    "DashboardSlow",
    "DatabaseUnreachable",
    "EndpointErrorRatioHigh",
)


def url_for(name: str) -> str:
    base, _, _ = ADMIN.rpartition("/")
    return f"{base}/{name}"


async def fill(url: str, rows: int) -> float:
    """Insert the rows; returns seconds taken."""
    per_table = rows // len(ALERT_TABLES)
    names = "ARRAY[" + ",".join(f"'{n}'" for n in NAMES) + "]"
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        for t, table in enumerate(ALERT_TABLES):
            # one alert every (365 days / per_table), newest last; the last 20 still firing
            await conn.execute(
                f"""
                INSERT INTO {table} (fingerprint, alertname, status, severity, organization_id,
                    summary, description, labels, annotations, starts_at, ends_at, received_at,
                    updated_at)
                SELECT md5('{table}' || (i % 5000)::text), n.name,
                    CASE WHEN i > $1 - 20 THEN 'firing' ELSE 'resolved' END,
                    (ARRAY['critical','high','medium','low'])[1 + i % 4],
                    'org-' || (i * 7 % 200),
                    n.name || ' for org-' || (i * 7 % 200) || ' crossed its threshold',
                    'generated row ' || i,
                    jsonb_build_object('alertname', n.name, 'organization_id',
                        'org-' || (i * 7 % 200), 'category', '{table.removesuffix("_alerts")}'),
                    jsonb_build_object('summary', n.name, 'runbook_url',
                        'https://runbooks.example/' || n.name),
                    s.at,
                    CASE WHEN i > $1 - 20 THEN NULL
                         ELSE s.at + make_interval(secs => 60 + (i * 37 % 7200)) END,
                    s.at, s.at
                FROM generate_series(1, $1) AS i,
                LATERAL (SELECT now() - make_interval(secs => (($1 - i) * 31536000.0 / $1)
                                                      + {t}) AS at) s,
                LATERAL (SELECT ({names})[1 + i % {len(NAMES)}] AS name) n
                """,  # noqa: S608 - table names are ALERT_TABLES
                per_table,
            )
            await conn.execute(
                f"""
                INSERT INTO alert_acknowledgements (fingerprint, starts_at, alert_table, severity,
                    username, note, created_at)
                SELECT fingerprint, starts_at, '{table}', severity, 'bench', '',
                    starts_at + interval '4 minutes'
                FROM {table} WHERE id % 10 = 0 ON CONFLICT DO NOTHING
                """  # noqa: S608
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed(client: httpx.AsyncClient, path: str, requests: int) -> list[float]:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(path)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return samples


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def run(rows: int, requests: int) -> None:
    name = f"passiton_bench_console_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = url_for(name)
    try:
        async with open_storage(url) as storage:
            await storage.migrate()
            await storage.console().upsert_user(
                "bench", hash_password(PASSWORD), "viewer", datetime.now(UTC)
            )
        seconds = await fill(url, rows)
        print(f"{rows:,} alert rows written in {seconds:.1f}s (generate_series, then ANALYZE)")
        config = BridgeConfig(
            database_url=url,
            webhook_token="bench",
            rollup_interval_seconds=0,
            deadman_after_seconds=0,
            maintenance_interval_seconds=3600,
            prometheus_url="http://127.0.0.1:9",
        )
        app = create_bridge_app(config, notifiers={}, workers=False)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                page = await client.get("/console/login")
                token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
                await client.post(
                    "/console/login",
                    data={"csrf": token, "username": "bench", "password": PASSWORD},
                )
                # a cursor 50 pages deep, for the "deep page" case
                path = "/console/history"
                for _ in range(50):
                    html = (await client.get(path)).text
                    found = re.search(r'href="(\?[^"]*after=[^"]+)" rel="next"', html)
                    assert found, "no next page"
                    path = "/console/history" + found.group(1).replace("&amp;", "&")
                deep = path
                cases = {
                    "baseline GET /-/healthy": "/-/healthy",
                    "history, first page (100 rows)": "/console/history",
                    "history, 51st page (keyset)": deep,
                    "history, org + severity filter": "/console/history?org=org-42&severity=high",
                    "history, text search": "/console/history?q=org-77+crossed",
                    "history, text search, no match": "/console/history?q=no-such-words",
                    "history, alert name, 30 days": "/console/history?alertname=TrafficSpike"
                    f"&since={time.strftime('%Y-%m-%d', time.gmtime(time.time() - 30 * 86400))}",
                    "review, 7 days": "/console/review?days=7",
                    "review, 30 days": "/console/review?days=30",
                    "now (20 firing)": "/console/",
                }
                results = {}
                for label, target in cases.items():
                    await timed(client, target, 2)  # warm the caches
                    results[label] = await timed(client, target, requests)
        finally:
            await runner.cleanup()
        base_p50 = p(results["baseline GET /-/healthy"], 0.5)
        print(f"\n{requests} requests each, sequential, one client; PostgreSQL, {rows:,} rows")
        print(f"{'page':<36} {'p50 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}")
        for label, samples in results.items():
            p50, p99 = p(samples, 0.5), p(samples, 0.99)
            print(f"{label:<36} {p50:8.1f} {p99:8.1f} {p50 / base_p50:14.1f}x")
    finally:
        admin = await asyncpg.connect(ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.requests))


if __name__ == "__main__":
    main()
