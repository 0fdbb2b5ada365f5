"""Now page benchmark: 1,000 firing alerts, the page full and as the live refresh's fragment,
unfiltered, filtered, collapsed by name and with everything shown.

A temporary database gets the bridge's migrations; the bridge application (console included)
serves on a local port and receives the alerts through its own webhook (Alertmanager's
version-4 notifications of 100 alerts each), so the incidents are what the bridge makes of them
(20 alert names over 50 organizations, every severity). One alert in ten is then acknowledged
and one in twenty silenced (as the reconciler records Alertmanager's silences), so the default
view hides some. A logged-in client times each page sequentially; median and p95 in
milliseconds, with ``GET /-/healthy`` as the baseline (the HTTP round trip and the framework).

Run: `.venv/bin/python benchmarks/console_now.py [--alerts 1000] [--requests 30]` (PostgreSQL
at PASSITON_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.config import BridgeConfig
from bridge.storage import open_storage
from console.auth import hash_password
from passiton_monitoring.bridge_process import create_bridge_app

ADMIN = os.environ.get("PASSITON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "benchmark password"
TOKEN = "bench-webhook-token"
CATEGORIES = ("payment", "widget", "traffic", "dashboard", "system")
SEVERITIES = ("critical", "high", "medium", "low")
ORGANIZATIONS = 50


def url_for(name: str) -> str:
    base, _, _ = ADMIN.rpartition("/")
    return f"{base}/{name}"


def alerts(n: int) -> list[dict]:
    """n firing alerts: 20 names (4 per category) over 50 organizations."""
    start = datetime.now(UTC) - timedelta(minutes=30)
    out = []
    for i in range(n):
        name_no = i // ORGANIZATIONS % 20
        category = CATEGORIES[name_no % len(CATEGORIES)]
        org = f"org-{i % ORGANIZATIONS}"
        name = f"Bench{category.capitalize()}Alert{name_no}"
        out.append(
            {
                "status": "firing",
                "labels": {
                    "alertname": name,
                    "severity": SEVERITIES[(i // 7) % 4],
                    "category": category,
                    "organization_id": org,
                    "instance": f"host-{i % 13}",
                },
                "annotations": {
                    "summary": f"{name} for {org}: the ratio crossed its threshold",
                    "runbook_url": f"https://runbooks.example/{name}",
                },
                "startsAt": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": f"{i:016x}",
            }
        )
    return out


async def seed(client: httpx.AsyncClient, url: str, n: int) -> float:
    started = time.perf_counter()
    every = alerts(n)
    for first in range(0, n, 100):
        batch = every[first : first + 100]
        body = {
            "version": "4",
            "groupKey": f'{{}}:{{batch="{first}"}}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "bridge",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example:9093",
            "alerts": batch,
        }
        response = await client.post(
            "/v1/alertmanager", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 200, response.text
    conn = await asyncpg.connect(url)
    try:
        for table in (f"{c}_alerts" for c in CATEGORIES):
            await conn.execute(
                f"""
                INSERT INTO alert_acknowledgements (fingerprint, starts_at, alert_table, severity,
                    username, note, created_at)
                SELECT fingerprint, starts_at, '{table}', severity, 'bench', '', now()
                FROM {table} WHERE id % 10 = 0 ON CONFLICT DO NOTHING
                """  # noqa: S608 - fixed table names
            )
            await conn.execute(
                f"""
                INSERT INTO alert_suppression (fingerprint, starts_at, alert_table, silenced_by,
                    seen_at)
                SELECT fingerprint, starts_at, '{table}', '[{{"id": "bench"}}]'::jsonb, now()
                FROM {table} WHERE id % 20 = 5 ON CONFLICT DO NOTHING
                """  # noqa: S608
            )
        await conn.execute("ANALYZE")
        incidents = await conn.fetchval("SELECT count(*) FROM incidents WHERE status <> 'resolved'")
    finally:
        await conn.close()
    print(f"{n:,} firing alerts in {incidents} open incidents, seeded in", end=" ")
    return time.perf_counter() - started


async def timed(client: httpx.AsyncClient, path: str, requests: int) -> tuple[list[float], int]:
    samples, size = [], 0
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(path)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        size = len(response.content)
    return samples, size


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


async def run(n: int, requests: int) -> None:
    name = f"passiton_bench_now_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = url_for(name)
    try:
        async with open_storage(url) as storage:
            await storage.migrate()
            await storage.console().upsert_user(
                "bench", hash_password(PASSWORD), "responder", datetime.now(UTC)
            )
        config = BridgeConfig(
            database_url=url,
            webhook_token=TOKEN,
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
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
                print(f"{await seed(c, url, n):.1f}s")
                page = await c.get("/console/login")
                token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
                await c.post(
                    "/console/login",
                    data={"csrf": token, "username": "bench", "password": PASSWORD},
                )
                narrow = quote('severity="critical" organization_id=~"org-1.*"')
                wide = quote('category=~"payment|widget" instance!="host-3"')
                cases = {
                    "baseline GET /-/healthy": "/-/healthy",
                    "now, full page": "/console/",
                    "now, fragment (live refresh)": "/console/?fragment=1",
                    "now, full, everything shown": "/console/?all=1",
                    "now, fragment, everything shown": "/console/?all=1&fragment=1",
                    "now, full, filtered (narrow)": f"/console/?q={narrow}",
                    "now, fragment, filtered (narrow)": f"/console/?q={narrow}&fragment=1",
                    "now, full, filtered (wide regex)": f"/console/?q={wide}",
                    "now, fragment, filtered (wide)": f"/console/?q={wide}&fragment=1",
                    "now, collapsed by name": "/console/?group=name",
                }
                results = {}
                for label, target in cases.items():
                    await timed(c, target, 2)  # warm the caches
                    results[label] = await timed(c, target, requests)
        finally:
            await runner.cleanup()
        print(f"\n{requests} requests each, sequential, one client; PostgreSQL, {n:,} firing")
        print(f"{'page':<36} {'median ms':>9} {'p95 ms':>8} {'KiB':>6}")
        for label, (samples, size) in results.items():
            median = statistics.median(samples) * 1000
            print(f"{label:<36} {median:9.1f} {p95(samples):8.1f} {size / 1024:6.0f}")
    finally:
        admin = await asyncpg.connect(ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.alerts, args.requests))


if __name__ == "__main__":
    main()
