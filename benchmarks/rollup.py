"""History rollup benchmark: one hour rolled up at the exporter's label bounds.

A local aiohttp server answers Prometheus's ``/api/v1/query`` with as many series as the
exporter's default bounds allow (1000 organizations, 2000 widgets, 200 routes), and
``bridge.rollup.run_rollup`` writes the hour into PostgreSQL (a temporary database).
Reported: seconds per hour (queries + transformation + upserts) and rows written, for
the first write of an hour and for a rewrite of the same hour (updates in place).

Run: `.venv/bin/python benchmarks/rollup.py [--hours 3]` (PostgreSQL at PASSITON_TEST_POSTGRES,
default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import rollup
from bridge.storage import open_storage

ORGS, WIDGETS_PER_ORG, ROUTES = 1000, 2, 100  # 2000 widgets; 100 routes x 2 methods
ADMIN = os.environ.get("PASSITON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def vector(query: str) -> list[dict[str, Any]]:
    def item(labels: dict[str, str], value: float) -> dict[str, Any]:
        return {"metric": labels, "value": [0, str(value)]}

    orgs = [f"org-{i}" for i in range(ORGS)]
    routes = [(f"/api/r{i}/:id", m) for i in range(ROUTES) for m in ("GET", "POST")]
    if query == rollup.TRAFFIC_BY_CLIENT:
        return [item({"organization_id": o, "client": c}, 100) for o in orgs
                for c in ("human", "bot", "suspicious")]  # fmt: skip
    if query == rollup.TRAFFIC_BY_COUNTRY:
        return [item({"organization_id": o, "country": c}, 50) for o in orgs
                for c in ("US", "DE", "GB", "FR", "unknown")]  # fmt: skip
    if query == rollup.ENDPOINT_REQUESTS:
        return [item({"route": r, "method": m, "status_class": s}, 1000) for r, m in routes
                for s in ("2xx", "4xx", "5xx")]  # fmt: skip
    if query.startswith("histogram_quantile") and "route, method" in query:
        return [item({"route": r, "method": m}, 0.2) for r, m in routes]
    if query == rollup.WIDGET_LOADS:
        return [item({"organization_id": o, "widget_id": f"{o}-w{w}"}, 300) for o in orgs
                for w in range(WIDGETS_PER_ORG)]  # fmt: skip
    if query == rollup.WIDGET_ERRORS:
        return [item({"organization_id": o, "widget_id": f"{o}-w{w}", "kind": k}, 3) for o in orgs
                for w in range(WIDGETS_PER_ORG) for k in ("load", "render", "script")]  # fmt: skip
    if query == rollup.WIDGET_P95:
        return [item({"organization_id": o}, 1.5) for o in orgs]
    if "by (service)" in query:
        return [item({"service": s}, 0.999) for s in ("api", "dashboard")]
    if "by (job)" in query:
        return [item({"job": j}, 1) for j in ("passiton-exporter", "passiton-bridge")]
    return [item({}, 0.5)]


async def serve() -> tuple[web.AppRunner, str]:
    cache: dict[str, bytes] = {}

    async def handle(request: web.Request) -> web.Response:
        query = (await request.post())["query"]
        if query not in cache:
            body = {"status": "success", "data": {"resultType": "vector", "result": vector(query)}}
            cache[query] = web.json_response(body).body
        return web.Response(body=cache[query], content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v1/query", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def bench(url: str, prometheus: str, hours: int) -> None:
    storage = open_storage(url)
    await storage.open()
    await storage.migrate()
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            for label in ("first write", "rewrite"):
                times, counts = [], {}
                for h in range(hours):
                    hour = datetime(2026, 1, 5, h, tzinfo=UTC)
                    start = time.perf_counter()
                    rows = await rollup.run_rollup(storage, prometheus, hour, client=client)
                    times.append(time.perf_counter() - start)
                    counts = rows.counts()
                print(
                    f"  {label:11s}: {statistics.median(times):6.2f} s per hour (median of "
                    f"{hours}), {sum(counts.values())} rows {counts}"
                )
    finally:
        await storage.close()


async def main(hours: int) -> None:
    runner, prometheus = await serve()
    name = f"passiton_bench_{uuid.uuid4().hex[:8]}"
    base = ADMIN.rpartition("/")[0]
    conn = await asyncpg.connect(ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        print("PostgreSQL")
        await bench(f"{base}/{name}", prometheus, hours)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=3)
    asyncio.run(main(parser.parse_args().hours))
