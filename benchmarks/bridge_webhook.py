"""Benchmark: Alertmanager notifications into the bridge on PostgreSQL, next to a naive baseline.

    .venv/bin/python benchmarks/bridge_webhook.py [--seconds 10] [--alerts 100] [--profile]

Runs, against a fresh PostgreSQL database on this machine:
1. acknowledgement latency at a steady 100 notifications/s of 10 alerts each (p50/p99);
2. accepted throughput: concurrent clients posting notifications of ``--alerts`` new alerts
   each; an answer 200 means stored + deliveries queued, in one transaction;
3. delivery throughput: pending deliveries drained through a channel that POSTs to a local
   fake HTTP endpoint (no rate limit, so the bridge is what is measured).
The same load runs against "naive": the same payloads handled row by row (per alert, one INSERT
into its table and one delivery row), as a handler without batching would. Each server runs in
its own process; the load generator shares the machine's cores with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.app import Bridge, create_app
from bridge.config import BridgeConfig
from bridge.model import Message
from bridge.storage import open_storage
from bridge.webhook import parse_notification

ADMIN_URL = os.environ.get("PASSITON_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def db_url(name: str) -> str:
    return ADMIN_URL.rpartition("/")[0] + "/" + name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_TEMPLATES: dict[int, bytes] = {}


def notification(prefix: str, n: int, alerts: int) -> bytes:
    """A notification of ``alerts`` new alerts, unique per (prefix, n)."""
    template = _TEMPLATES.get(alerts)
    if template is None:
        template = _TEMPLATES[alerts] = _template(alerts)
    starts = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat()
    return template.replace(b"@@ID@@", f"{prefix}{n:08x}".encode()).replace(
        b"@@STARTS@@", starts.replace("+00:00", "Z").encode()
    )


def _template(alerts: int) -> bytes:
    items = []
    for i in range(alerts):
        items.append(
            {
                "status": "firing",
                "labels": {
                    "alertname": "EndpointLatencyHigh",
                    "severity": "medium",
                    "category": ("payment", "widget", "traffic", "dashboard", "system")[i % 5],
                    "organization_id": f"org-{i % 50}",
                    "route": f"/api/r{i}",
                    "instance": "exporter:9820",
                    "batch": "@@ID@@",
                },
                "annotations": {
                    "summary": f"p95 latency above 1s on /api/r{i}",
                    "description": "p95 latency 1.8s over the last 5 minutes (threshold 1s).",
                    "runbook_url": "https://docs.example/runbooks#endpoint-latency-high",
                },
                "startsAt": "@@STARTS@@",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
                "fingerprint": f"@@ID@@{i:04x}",
            }
        )
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="EndpointLatencyHigh",batch="@@ID@@"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "bridge",
            "groupLabels": {"alertname": "EndpointLatencyHigh"},
            "commonLabels": {"alertname": "EndpointLatencyHigh", "severity": "medium"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": items,
        }
    ).encode()


# -- servers (each run in a child process) ----------------------------------------------------


class NullNotifier:
    def __init__(self, name: str) -> None:
        self.name = name

    async def notify(self, message: Message) -> None:
        return None


def serve_bridge(url: str, port: int, profile: bool) -> None:
    config = BridgeConfig(
        database_url=url,
        webhook_token=TOKEN,
        deadman_after_seconds=0,
        maintenance_interval_seconds=3600,
        db_pool_size=10,
    )
    app = create_app(config, notifiers={"slack": NullNotifier("slack")}, workers=False)
    _run(app, port, profile)


def serve_naive(url: str, port: int, profile: bool) -> None:
    """The baseline: the same contract, handled one alert and one statement at a time."""

    async def startup(app: web.Application) -> None:
        app["pool"] = await asyncpg.create_pool(url, min_size=2, max_size=10)

    async def cleanup(app: web.Application) -> None:
        await app["pool"].close()

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.Response(status=401)
        data = await request.json()
        now = datetime.now(UTC)
        async with request.app["pool"].acquire() as conn, conn.transaction():
            for a in data["alerts"]:
                starts = datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00"))
                labels = a["labels"]
                table = f"{labels.get('category', 'system')}_alerts"
                new = await conn.fetchval(
                    f"INSERT INTO {table} (fingerprint, starts_at, status, alertname, severity,"  # noqa: S608
                    " organization_id, summary, description, labels, annotations, received_at,"
                    " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb,"
                    " $11, $11) ON CONFLICT (fingerprint, starts_at) DO NOTHING RETURNING 1",
                    a["fingerprint"],
                    starts,
                    a["status"],
                    labels["alertname"],
                    labels.get("severity", "low"),
                    labels.get("organization_id"),
                    a["annotations"].get("summary", ""),
                    a["annotations"].get("description", ""),
                    json.dumps(labels),
                    json.dumps(a["annotations"]),
                    now,
                )
                if not new:
                    continue
                await conn.execute(
                    "INSERT INTO alert_deliveries (channel, group_key, message, created_at,"
                    " next_attempt_at) VALUES ('naive-baseline', $1, $2::jsonb, $3, $3)",
                    data["groupKey"],
                    json.dumps(a),
                    now,
                )
        return web.json_response({"status": "stored"})

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/v1/alertmanager", handle)
    app.router.add_get("/-/ready", lambda _: web.Response(text="OK"))
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    _run(app, port, profile)


def _run(app: web.Application, port: int, profile: bool) -> None:
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
    try:
        web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
    finally:
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)


# -- load ---------------------------------------------------------------------------------------


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"{base}/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} did not become ready")


async def throughput(base: str, prefix: str, seconds: float, alerts: int, clients: int) -> dict:
    counter = iter(range(10**9))
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def client() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                data = notification(prefix, next(counter), alerts)
                async with http.post(f"{base}/v1/alertmanager", data=data, headers=HEADERS) as r:
                    await r.read()
                    if r.status == 200:
                        done += 1
                    else:
                        errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "notifications_per_s": done / elapsed,
        "alerts_per_s": done * alerts / elapsed,
        "errors": errors,
    }


async def steady_latency(base: str, prefix: str, seconds: float, rate: int = 100) -> dict:
    total = int(seconds * rate)
    bodies = [notification(prefix, n, 10) for n in range(total)]
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:

        async def one(data: bytes) -> None:
            nonlocal errors
            started = time.perf_counter()
            async with http.post(f"{base}/v1/alertmanager", data=data, headers=HEADERS) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

        tasks = []
        start = time.perf_counter()
        for i, data in enumerate(bodies):  # open loop: send on schedule, whatever the answers
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(data)))
        await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
        "errors": errors,
    }


async def run_server(variant: str, url: str, args: argparse.Namespace) -> dict:
    port = free_port()
    command = [sys.executable, __file__, "--serve", variant, "--db", url, "--port", str(port)]
    if args.profile:
        command.append("--profile")
    process = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        prefix = f"{variant[:2]}{uuid.uuid4().hex[:6]}"
        await throughput(base, prefix + "w", 2, args.alerts, args.clients)  # warm-up
        await asyncio.sleep(2)
        # The steady load first, so that it does not pay for the burst's vacuum and checkpoint.
        result = await steady_latency(base, prefix + "l", args.seconds)
        result.update(await throughput(base, prefix + "t", args.seconds, args.alerts, args.clients))
    finally:
        process.send_signal(signal.SIGINT)
        _, err = await process.communicate()
    if args.profile:
        print(f"--- profile of the {variant} server ---\n{err.decode()[-6000:]}", file=sys.stderr)
    return result


class HttpChannel:
    """A channel that POSTs every message to a local endpoint (a fake, without rate limit)."""

    def __init__(self, name: str, url: str, http: aiohttp.ClientSession) -> None:
        self.name, self.url, self.http = name, url, http

    async def notify(self, message: Message) -> None:
        async with self.http.post(self.url, json={"text": message.title}) as response:
            response.raise_for_status()


async def delivery_throughput(url: str, count: int, concurrency: int) -> dict:
    received = 0

    async def sink(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(text="ok")

    sink_app = web.Application()
    sink_app.router.add_post("/hook", sink)
    runner = web.AppRunner(sink_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    config = BridgeConfig(
        database_url=url,
        webhook_token=TOKEN,
        deadman_after_seconds=0,
        maintenance_interval_seconds=3600,
        delivery_concurrency=concurrency,
    )
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        bridge = Bridge(config, {"slack": HttpChannel("slack", hook, http)})
        await bridge.start(workers=False)
        for n in range(count // 10):
            await bridge.ingest(parse_notification(notification("dl", n, 10)))
        # Medium severity, one Slack message per notification: count // 10 deliveries.
        pending = count // 10
        started = time.perf_counter()
        bridge.delivery.start()
        while received < pending:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await bridge.stop()
    await runner.cleanup()
    return {"deliveries_per_s": pending / elapsed, "deliveries": pending}


async def main(args: argparse.Namespace) -> None:
    name = f"passiton_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = db_url(name)
    try:
        async with open_storage(url) as storage:
            await storage.migrate()
        results = {}
        for variant in args.variants:
            results[variant] = await run_server(variant, url, args)
            print(variant, json.dumps(results[variant]), flush=True)
        delivery = await delivery_throughput(url, 20000, args.delivery_concurrency)
        print("delivery", json.dumps(delivery), flush=True)
        print()
        print(f"{'':8} {'notif/s':>9} {'alerts/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for variant, r in results.items():
            print(
                f"{variant:8} {r['notifications_per_s']:9.0f} {r['alerts_per_s']:10.0f}"
                f" {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['errors']:7d}"
            )
        print(
            f"delivery: {delivery['deliveries_per_s']:.0f} deliveries/s to a local HTTP channel"
            f" ({delivery['deliveries']} deliveries, concurrency {args.delivery_concurrency})"
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--alerts", type=int, default=100, help="alerts per notification")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--delivery-concurrency", type=int, default=32)
    parser.add_argument("--variants", nargs="+", default=["bridge", "naive"])
    parser.add_argument("--profile", action="store_true", help="pyinstrument the servers")
    parser.add_argument("--serve", choices=["bridge", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "bridge":
        serve_bridge(args.db, args.port, args.profile)
    elif args.serve == "naive":
        serve_naive(args.db, args.port, args.profile)
    else:
        asyncio.run(main(args))


if __name__ == "__main__":
    cli()
