"""Exporter ingest benchmark: side by side, in one run, on this machine.

Each HTTP server runs pinned to CPU 0 and wrk (the load generator) to CPU 1, so every server gets
one core. Compared:

- single-event POST: the exporter vs Prometheus Pushgateway receiving the equivalent push vs a
  bare aiohttp handler that only increments one counter (the bound for this stack: aiohttp on the
  services' event loop, uvloop);
- 1000-event batches: the exporter vs the bare handler parsing the same JSON and incrementing one
  counter by the number of events;
- /metrics render time at 10,000 series (the exporter's registry vs a plain client_python registry);
- resident memory of the exporter while 100,000 distinct organization ids arrive.

The exporter runs as in production: `POST /v1/events` with the ingest token (wrk sends it).
``--rounds N`` repeats the side-by-side runs N times (the machine may be shared: the ratios are
reported per round and as their median, with the load average); ``--ingest-only`` skips the render
and memory parts.

Run: `make bench` or `.venv/bin/python benchmarks/exporter_ingest.py [--seconds 10] [--rounds 5]`.
Needs: wrk, prometheus-pushgateway (Debian packages).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import generate_latest

from exporter.app import METRICS, RECORDER, REGISTRY, create_app
from exporter.config import ExporterConfig, LabelBounds
from exporter.events import TrafficRequest
from exporter.exposition import CachedExposition

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

BARE_SERVER = textwrap.dedent(
    """
    import json, sys
    from aiohttp import web
    from prometheus_client import Counter
    from passiton_common.event_loop import new_event_loop
    counter = Counter("bench_events", "events")
    async def single(request):
        await request.read()
        counter.inc()
        return web.json_response({"accepted": 1, "rejected": 0, "errors": []}, status=202)
    async def batch(request):
        events = json.loads(await request.read())
        counter.inc(len(events))
        return web.json_response({"accepted": len(events), "rejected": 0, "errors": []}, status=202)
    async def ready(request):
        return web.Response(text="ok")
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/single", single)
    app.router.add_post("/batch", batch)
    app.router.add_get("/-/ready", ready)
    web.run_app(
        app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
        loop=new_event_loop(),  # the services' loop: the bound of the same stack
    )
    """
)

EVENT = {
    "type": "payment.failed",
    "organization_id": "org-123",
    "amount": 2500,
    "currency": "usd",
    "error": "Your card was declined.",
    "decline_code": "insufficient_funds",
}


def batch_events(n: int, orgs: int = 50) -> list[dict]:
    kinds = [
        EVENT,
        {
            "type": "widget.loaded",
            "organization_id": "org-1",
            "widget_id": "w-1",
            "duration_ms": 840,
        },
        {
            "type": "traffic.request",
            "organization_id": "org-1",
            "country": "US",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36",
            "ip": "203.0.113.9",
        },
        {
            "type": "endpoint.request",
            "route": "/api/donations",
            "method": "POST",
            "status": 200,
            "duration_ms": 42,
        },
        {
            "type": "payment.succeeded",
            "organization_id": "org-1",
            "amount": 1000,
            "currency": "eur",
        },
    ]
    out = []
    for i in range(n):
        event = dict(kinds[i % len(kinds)])
        if "organization_id" in event:
            event["organization_id"] = f"org-{i % orgs}"
        if "ip" in event:
            event["ip"] = f"203.0.{i % 7}.{i % 250}"
        out.append(event)
    return out


TOKEN = "benchmark-ingest-token-0123456789"
AUTHORIZATION = f"Bearer {TOKEN}"


def exporter_argv(port: int) -> list[str]:
    """The exporter on ``port`` (internal listener); its token is ``exporter_env()``'s."""
    public = f"127.0.0.1:{free_port()}"
    cli = [PY, "-m", "passiton_monitoring", "exporter", "--listen", f"127.0.0.1:{port}"]
    return [*cli, "--public-listen", public]


def exporter_env() -> dict[str, str]:
    return {"EXPORTER_INGEST_TOKEN": TOKEN, "LOG_LEVEL": "WARNING"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


@contextmanager
def server(cmd: list[str], ready_url: str, env: dict | None = None):
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *cmd],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(ready_url)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(
    url: str,
    body: bytes,
    content_type: str,
    seconds: int,
    connections: int,
    authorization: str | None = None,
) -> dict:
    with tempfile.NamedTemporaryFile() as body_file:
        body_file.write(body)
        body_file.flush()
        out = subprocess.run(
            [
                "taskset",
                "-c",
                "1",
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "-s",
                str(Path(__file__).with_name("post.lua")),
                url,
                "--",
                body_file.name,
                content_type,
                *([authorization] if authorization else []),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result = json.loads(re.search(r"^JSON (.*)$", out, re.M).group(1))
    result["rps"] = result["requests"] / result["seconds"]
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (and its reaped children) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def render_benchmark() -> dict:

    app = create_app(ExporterConfig(bounds=LabelBounds(organization_id=2000)))
    rec = app[RECORDER]
    countries = ["US", "DE", "GB", "FR", "NL"]
    events = [
        TrafficRequest(organization_id=f"org-{i}", country=countries[j], user_agent=None)
        for i in range(2000)
        for j in range(len(countries))
    ]
    rec.record(events)
    registry = app[REGISTRY]
    series = sum(len(f.samples) for f in registry.collect())

    plain = CollectorRegistry()
    counter = Counter("plain", "plain", ["a", "b"], registry=plain)
    for i in range(series):
        counter.labels(str(i // 10), str(i % 10)).inc()

    def timed(render) -> float:
        runs = []
        for _ in range(15):
            t = time.perf_counter()
            render()
            runs.append(time.perf_counter() - t)
        return statistics.median(runs)

    served = CachedExposition(app[METRICS].all())
    return {
        "series": series,
        "exporter_ms": timed(served.render) * 1e3,
        "generate_latest_ms": timed(lambda: generate_latest(registry)) * 1e3,
        "plain_ms": timed(lambda: generate_latest(plain)) * 1e3,
    }


def memory_benchmark(port: int) -> list[tuple[int, float]]:
    base = f"http://127.0.0.1:{port}"
    points = []
    with (
        server(exporter_argv(port), f"{base}/-/ready", env=exporter_env()) as proc,
        httpx.Client(timeout=30, headers={"Authorization": AUTHORIZATION}) as client,
    ):
        points.append((0, rss_mb(proc.pid)))
        sent = 0
        for checkpoint in (1_000, 10_000, 25_000, 50_000, 75_000, 100_000):
            while sent < checkpoint:
                batch = [
                    {
                        "type": "payment.failed",
                        "organization_id": f"org-{i}",
                        "decline_code": "do_not_honor",
                    }
                    for i in range(sent, sent + 1000)
                ]
                client.post(f"{base}/v1/events", json=batch).raise_for_status()
                sent += 1000
            client.get(f"{base}/metrics")
            points.append((sent, rss_mb(proc.pid)))
    return points


def measured(proc: subprocess.Popen, run) -> dict:
    """``run()``'s wrk result with the server's CPU seconds over it and requests per CPU second
    (on a shared machine the server may not get its core: this ratio does not depend on that)."""
    before = cpu_seconds(proc.pid)
    result = run()
    result["cpu"] = cpu_seconds(proc.pid) - before
    result["per_cpu"] = result["requests"] / max(result["cpu"], 1e-9)
    return result


def ingest_round(seconds: int, connections: int) -> dict:
    """One side-by-side run: bare aiohttp, the exporter, Pushgateway."""
    single = json.dumps(EVENT).encode()
    batch = json.dumps(batch_events(1000)).encode()
    results: dict = {}

    port = free_port()
    with server([PY, "-c", BARE_SERVER, str(port)], f"http://127.0.0.1:{port}/-/ready") as proc:
        base = f"http://127.0.0.1:{port}"
        results["bare_single"] = measured(
            proc, lambda: wrk(f"{base}/single", single, "application/json", seconds, connections)
        )
        results["bare_batch"] = measured(
            proc, lambda: wrk(f"{base}/batch", batch, "application/json", seconds, 4)
        )

    port = free_port()
    ready = f"http://127.0.0.1:{port}/-/ready"
    with server(exporter_argv(port), ready, env=exporter_env()) as proc:
        url = f"http://127.0.0.1:{port}/v1/events"
        results["exporter_single"] = measured(
            proc,
            lambda: wrk(url, single, "application/json", seconds, connections, AUTHORIZATION),
        )
        results["exporter_batch"] = measured(
            proc, lambda: wrk(url, batch, "application/json", seconds, 4, AUTHORIZATION)
        )

    port = free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(
            [
                "prometheus-pushgateway",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--persistence.file={tmp}/pg",
            ],
            f"http://127.0.0.1:{port}/-/ready",
            env={"GOMAXPROCS": "1"},
        ) as proc,
    ):
        push = (
            b"# TYPE passiton_payment_failures_total counter\n"
            b"passiton_payment_failures_total"
            b'{organization_id="org-123",decline_code="insufficient_funds"} 1\n'
        )
        results["pushgateway_single"] = measured(
            proc,
            lambda: wrk(
                f"http://127.0.0.1:{port}/metrics/job/bench/instance/app",
                push,
                "text/plain; version=0.0.4",
                seconds,
                connections,
            ),
        )
    with open("/proc/loadavg") as f:
        results["load"] = float(f.read().split()[0])
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ingest-only", action="store_true", help="skip render and memory")
    args = parser.parse_args()
    for tool in ("wrk", "prometheus-pushgateway", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk prometheus-pushgateway util-linux")

    rounds = []
    for n in range(args.rounds):
        r = ingest_round(args.seconds, args.connections)
        rounds.append(r)
        s, b, p = r["exporter_single"], r["bare_single"], r["pushgateway_single"]
        eb, bb = r["exporter_batch"], r["bare_batch"]
        print(
            f"round {n + 1}: exporter/pushgateway {s['rps'] / p['rps']:.2f}x "
            f"(per CPU second {s['per_cpu'] / p['per_cpu']:.2f}x), exporter/bare single "
            f"{s['rps'] / b['rps']:.2f}, batch {eb['rps'] / bb['rps']:.2f} (per CPU second "
            f"{eb['per_cpu'] / bb['per_cpu']:.2f}) (load average {r['load']:.1f})",
            flush=True,
        )
    results = rounds[-1]
    if not args.ingest_only:
        results["render"] = render_benchmark()
        results["memory"] = memory_benchmark(free_port())

    s, b, p = results["exporter_single"], results["bare_single"], results["pushgateway_single"]
    eb, bb = results["exporter_batch"], results["bare_batch"]
    print("\n== exporter ingest benchmark (servers on CPU 0, wrk on CPU 1; the last round) ==")
    print(
        f"{'single event':<22}{'req/s':>10}{'req/CPU s':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}"
    )
    for name, row in (("exporter", s), ("pushgateway", p), ("bare aiohttp", b)):
        print(
            f"{name:<22}{row['rps']:>10.0f}{row['per_cpu']:>11.0f}{row['p50']:>9.2f}"
            f"{row['p99']:>9.2f}{row['non2xx']:>9}"
        )
    print(f"\n{'1000-event batches':<22}{'events/s':>12}{'p99 ms':>9}")
    for name, row in (("exporter", eb), ("bare aiohttp + json", bb)):
        print(f"{name:<22}{row['rps'] * 1000:>12.0f}{row['p99']:>9.2f}")

    def median(f) -> float:
        return statistics.median(f(r) for r in rounds)

    def per_cpu(r: dict, a: str, b: str) -> float:
        return r[a]["per_cpu"] / r[b]["per_cpu"]

    print(f"\nmedians over {len(rounds)} round(s):")
    print(
        "  single event, exporter / pushgateway: "
        f"{median(lambda r: r['exporter_single']['rps'] / r['pushgateway_single']['rps']):.2f}x"
        " (goal >= 4x)"
    )
    print(
        "  the same per CPU second of each server: "
        f"{median(lambda r: per_cpu(r, 'exporter_single', 'pushgateway_single')):.2f}x"
    )
    print(
        "  single event, exporter / bare aiohttp: "
        f"{median(lambda r: r['exporter_single']['rps'] / r['bare_single']['rps']):.2f}"
    )
    print(
        "  1000-event batch, exporter / bare aiohttp + json: "
        f"{median(lambda r: r['exporter_batch']['rps'] / r['bare_batch']['rps']):.2f}"
        " (goal >= 0.9)"
    )
    print(
        "  the same per CPU second of each server: "
        f"{median(lambda r: per_cpu(r, 'exporter_batch', 'bare_batch')):.2f}"
    )
    print(f"  load average during the rounds: {[r['load'] for r in rounds]}")
    if not args.ingest_only:
        r, mem = results["render"], results["memory"]
        print(
            f"\n/metrics render at {r['series']} series: exporter {r['exporter_ms']:.1f} ms "
            f"(goal <= 50 ms); client_python generate_latest over the same registry "
            f"{r['generate_latest_ms']:.1f} ms, over a plain registry {r['plain_ms']:.1f} ms"
        )
        print("\nresident memory while distinct organization ids arrive (bound 1000):")
        for ids, mb in mem:
            print(f"  {ids:>7} ids: {mb:7.1f} MiB")
    print(json.dumps(rounds, indent=None, default=str), file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
