"""Benchmark: the bridge's webhook, side by side with a bare bound and with Alerta.

    .venv/bin/python benchmarks/bridge_webhook.py [--seconds 10] [--alerts 10] [--clients 16]
        [--rate 100] [--repeat 1] [--alerta VENV | --no-alerta] [--targets bridge bare alerta]
        [--profile]

One run, one PostgreSQL (``PASSITON_BENCH_POSTGRES``, default ``postgresql://postgres@127.0.0.1:
5432/test``: a fresh database per target, dropped afterwards), notifications of ``--alerts`` new
alerts each, the same load generator for every target, each target in its own process:

- ``bridge``: the real ``create_app`` with its delivery workers running and one channel (Slack's
  slot) that POSTs every message to a fake HTTP endpoint (a process of its own, no rate limit).
  200 = stored + deliveries queued, committed.
- ``bare``: the bound for this design: aiohttp + asyncpg, decode the JSON, one transaction that
  upserts the alerts into one table (``ON CONFLICT``) and inserts one outbox row per alert
  (``unnest``), answer 200 — nothing else (no auth, validation, routing, fatigue or delivery).
- ``alerta``: alerta-server (Flask) under gunicorn, 2 sync workers, auth off, on its own fresh
  database; the notifications go to its Alertmanager integration, ``/webhooks/prometheus``
  (answered 201 once every alert is stored). Alerta is never installed into the project's venv;
  give its virtualenv with ``--alerta`` (default ``$PASSITON_ALERTA_VENV`` or
  ``.passiton/alerta-venv``, skipped with a note when absent). ``make bench`` installs it:

      python3 -m venv .passiton/alerta-venv
      .passiton/alerta-venv/bin/pip install alerta-server gunicorn psycopg2-binary

  (alerta-server 9.1.0 installs and runs on Python 3.11. Its schema is created once before
  gunicorn starts: two workers creating it at the same time fail on a duplicate type. Its
  severities get the bridge's four added, ``ALERTA_CONF``: it refuses ``medium`` otherwise.)

Measured per target, after a 2 s warm-up (closed loop; for the bridge, until its outbox is empty
again): acknowledgement latency p50/p99 at a fixed open-loop rate (``--rate`` per second, capped
at half the warm-up's throughput so that an overloaded target reports its service time rather
than its queue; the rate used is printed), then accepted throughput (notifications/s,
``--clients`` concurrent clients, closed loop, ``--seconds``) with the server's CPU time per
notification. The ratios compare throughputs: bridge/bare and bridge/alerta. ``--repeat N`` runs
the targets N times, interleaved, and reports each target's median run (the machine's other
work moves single runs by ±30%). ``--profile`` prints a pyinstrument profile of each server
process (on stderr); it slows the server down, so that run's numbers are not comparable.

Results on the 2-core development machine (shared, so ±15%) are in docs/scaling.md.
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
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge_webhook_servers import (  # noqa: E402
    ALERTA_CONF,
    BARE_SCHEMA,
    TOKEN,
    serve_bare,
    serve_bridge,
    serve_sink,
)

from bridge.storage import open_storage  # noqa: E402

ADMIN_URL = os.environ.get("PASSITON_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PATHS = {"bridge": "/v1/alertmanager", "bare": "/v1/alertmanager", "alerta": "/webhooks/prometheus"}
READY = {"bridge": "/-/ready", "bare": "/-/ready", "alerta": "/management/healthcheck"}


def db_url(name: str) -> str:
    return ADMIN_URL.rpartition("/")[0] + "/" + name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_TEMPLATES: dict[int, bytes] = {}


def notification(prefix: str, n: int, alerts: int) -> bytes:
    """A notification of ``alerts`` new alerts, unique per (prefix, n) — for Alerta too, whose
    identity is (environment, resource = the ``instance`` label, event = ``alertname``)."""
    template = _TEMPLATES.get(alerts)
    if template is None:
        template = _TEMPLATES[alerts] = _template(alerts)
    starts = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat()
    return template.replace(b"@@ID@@", f"{prefix}{n:08x}".encode()).replace(
        b"@@STARTS@@", starts.replace("+00:00", "Z").encode()
    )


# fmt: off
def _template(alerts: int) -> bytes:
    categories = ("payment", "widget", "traffic", "dashboard", "system")
    items = [
        {
            "status": "firing",
            "labels": {
                "alertname": "EndpointLatencyHigh", "severity": "medium",
                "category": categories[i % 5], "organization_id": f"org-{i % 50}",
                "route": f"/api/r{i}", "instance": f"exporter-@@ID@@-{i}:9820", "batch": "@@ID@@",
            },
            "annotations": {
                "summary": f"p95 latency above 1s on /api/r{i}",
                "description": "p95 latency 1.8s over the last 5 minutes (threshold 1s).",
                "runbook_url": "https://docs.example/runbooks#endpoint-latency-high",
            },
            "startsAt": "@@STARTS@@", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
            "fingerprint": f"@@ID@@{i:04x}",
        }
        for i in range(alerts)
    ]
    return json.dumps({
        "version": "4", "groupKey": '{}:{alertname="EndpointLatencyHigh",batch="@@ID@@"}',
        "truncatedAlerts": 0, "status": "firing", "receiver": "bridge",
        "groupLabels": {"alertname": "EndpointLatencyHigh"},
        "commonLabels": {"alertname": "EndpointLatencyHigh", "severity": "medium"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": items,
    }).encode()
# fmt: on


# -- load -----------------------------------------------------------------------------------------


async def wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if process.returncode is not None:
                raise RuntimeError(f"{url}: the server exited with {process.returncode}")
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


Bodies = Callable[[int], bytes]


async def throughput(url: str, headers: dict, bodies: Bodies, seconds: float, clients: int) -> dict:
    counter = iter(range(10**9))
    done = errors = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as http:

        async def client() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                try:
                    async with http.post(url, data=bodies(next(counter)), headers=headers) as r:
                        await r.read()
                        ok = 200 <= r.status < 300
                except aiohttp.ClientError:
                    ok = False
                done += ok
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"notifications_per_s": done / elapsed, "accepted": done, "errors": errors}


async def steady_latency(
    url: str, headers: dict, bodies: Bodies, seconds: float, rate: float
) -> dict:
    total = max(int(seconds * rate), 1)
    payloads = [bodies(n) for n in range(total)]
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=500)) as http:

        async def one(data: bytes) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                async with http.post(url, data=data, headers=headers) as r:
                    await r.read()
                    errors += not 200 <= r.status < 300
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - started)

        tasks = []
        start = time.perf_counter()
        for i, data in enumerate(payloads):  # open loop: send on schedule, whatever the answers
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(data)))
        await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "rate": rate,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000,
        "latency_errors": errors,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its children (gunicorn's workers), from /proc."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # the pid, or its child
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def spawn(*command: str, env: dict | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command, stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})}
    )


async def stop(process: asyncio.subprocess.Process, label: str, show: bool) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        _, err = await process.communicate()
    if show:
        print(f"--- stderr of {label} ---\n{err.decode()[-12000:]}", file=sys.stderr)


async def start_target(
    target: str, url: str, port: int, args: argparse.Namespace, sink: str
) -> asyncio.subprocess.Process:
    me = [sys.executable, __file__, "--db", url, "--port", str(port)]
    if args.profile:
        me.append("--profile")
    if target == "bridge":
        return await spawn(*me, "--serve", "bridge", "--sink", sink)
    if target == "bare":
        conn = await asyncpg.connect(url)
        await conn.execute(BARE_SCHEMA)
        await conn.close()
        return await spawn(*me, "--serve", "bare")
    venv = Path(args.alerta)
    conf = Path(args.workdir, "alertad.conf")
    conf.write_text(ALERTA_CONF)
    env = {"DATABASE_URL": url, "AUTH_REQUIRED": "False", "ALERTA_SVR_CONF_FILE": str(conf)}
    schema = await spawn(
        str(venv / "bin/python"), "-c", "from alerta import create_app; create_app()", env=env
    )
    _, err = await schema.communicate()
    if schema.returncode:
        raise RuntimeError(f"alerta's schema could not be created: {err.decode()[-2000:]}")
    return await spawn(
        str(venv / "bin/gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "alerta:create_app()", env=env,
    )  # fmt: skip


async def delivered(sink: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(sink.replace("/hook", "/count")) as r:
        return int(await r.json())


async def run_target(target: str, args: argparse.Namespace, sink: str) -> dict:
    name = f"passiton_bench_{target}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = db_url(name)
    try:
        if target == "bridge":
            async with open_storage(url) as storage:
                await storage.migrate()
        port = free_port()
        process = await start_target(target, url, port, args, sink)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base + READY[target], process)
            post = base + PATHS[target]
            headers = {"Content-Type": "application/json"}
            if target == "bridge":
                headers["Authorization"] = f"Bearer {TOKEN}"
            prefix = f"{target[:2]}{uuid.uuid4().hex[:6]}"
            sent_before = await delivered(sink) if target == "bridge" else 0

            def bodies(tag: str) -> Bodies:
                return lambda n: notification(prefix + tag, n, args.alerts)

            async def drained(expected: int) -> str:
                """Wait (up to 60 s) until the fake endpoint got one message per notification
                (medium severity: Slack only); "got/expected"."""
                deadline = time.perf_counter() + 60
                while (got := await delivered(sink) - sent_before) < expected:
                    if time.perf_counter() > deadline:
                        break
                    await asyncio.sleep(0.1)
                return f"{got}/{expected}"

            warm = await throughput(post, headers, bodies("w"), 2, args.clients)
            if target == "bridge":  # the latency run starts with the outbox empty
                await drained(warm["accepted"])
            await asyncio.sleep(1)
            rate = min(args.rate, max(warm["notifications_per_s"] / 2, 1.0))
            result = await steady_latency(post, headers, bodies("l"), args.seconds, rate)
            cpu = cpu_seconds(process.pid)
            result.update(await throughput(post, headers, bodies("t"), args.seconds, args.clients))
            result["cpu_ms"] = (cpu_seconds(process.pid) - cpu) * 1000 / max(result["accepted"], 1)
            if target == "bridge":
                total = warm["accepted"] + int(args.seconds * rate) + result["accepted"]
                result["delivered"] = await drained(total)
        finally:
            await stop(process, target, args.profile)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return result


async def main(args: argparse.Namespace) -> None:
    targets = list(args.targets)
    if "alerta" in targets and (
        args.alerta is None or not Path(args.alerta, "bin/gunicorn").exists()
    ):
        print(
            f"alerta skipped: no virtualenv with alerta-server and gunicorn at {args.alerta}"
            " (see this script's docstring for how to install it)",
            file=sys.stderr,
        )
        targets.remove("alerta")
    args.workdir = tempfile.mkdtemp(prefix="passiton-bench-")
    sink_port = free_port()
    sink_process = await spawn(
        sys.executable, __file__, "--serve", "sink", "--port", str(sink_port)
    )
    sink = f"http://127.0.0.1:{sink_port}/hook"
    results: dict[str, dict] = {}
    try:
        await wait_ready(sink.replace("/hook", "/count"), sink_process)
        runs: dict[str, list[dict]] = {t: [] for t in targets}
        for _ in range(args.repeat):  # interleaved, so that a busy spell hits every target
            for target in targets:
                runs[target].append(await run_target(target, args, sink))
                print(target, json.dumps(runs[target][-1]), flush=True)
        for target, done in runs.items():  # the run with the median throughput
            done.sort(key=lambda r: r["notifications_per_s"])
            results[target] = done[len(done) // 2]
    finally:
        await stop(sink_process, "sink", False)
    print(
        f"\n{args.alerts} alerts per notification, {args.clients} clients, {args.seconds:g}s,"
        f" the median of {args.repeat} run(s)"
    )
    print(
        f"{'':8} {'notif/s':>8} {'alerts/s':>8} {'cpu ms':>7} {'rate/s':>6} {'p50 ms':>7}", end=""
    )
    print(f" {'p99 ms':>7} errors")
    for target, r in results.items():
        print(
            f"{target:8} {r['notifications_per_s']:8.0f}"
            f" {r['notifications_per_s'] * args.alerts:8.0f} {r['cpu_ms']:7.2f} {r['rate']:6.0f}"
            f" {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} {r['errors'] + r['latency_errors']}"
        )
    print(
        "(cpu ms: the server's CPU time per accepted notification, in the throughput run;"
        " rate/s: the fixed rate of the latency run, capped at half the warm-up's throughput)"
    )
    if "bridge" in results:
        if "delivered" in results["bridge"]:
            print(f"bridge deliveries sent to the fake endpoint: {results['bridge']['delivered']}")
        mine = results["bridge"]["notifications_per_s"]
        for other in ("bare", "alerta"):
            if other in results:
                ratio = mine / results[other]["notifications_per_s"]
                print(f"bridge/{other}: {ratio:.2f}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--alerts", type=int, default=10, help="alerts per notification")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=100.0, help="notifications/s for latency")
    parser.add_argument("--repeat", type=int, default=1, help="runs per target; the median")
    parser.add_argument("--targets", nargs="+", default=["bridge", "bare", "alerta"])
    default_venv = os.environ.get("PASSITON_ALERTA_VENV", str(ROOT / ".passiton/alerta-venv"))
    parser.add_argument("--alerta", default=default_venv, help="Alerta's virtualenv")
    parser.add_argument("--no-alerta", dest="alerta", action="store_const", const=None)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the servers")
    parser.add_argument("--serve", choices=["bridge", "bare", "sink"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "bridge":
        serve_bridge(args.db, args.port, args.sink, args.profile)
    elif args.serve == "bare":
        serve_bare(args.db, args.port, args.profile)
    elif args.serve == "sink":
        serve_sink(args.port)
    else:
        asyncio.run(main(args))


if __name__ == "__main__":
    cli()
