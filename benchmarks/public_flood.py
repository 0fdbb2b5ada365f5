"""A stranger's request flood on the exporter's public listener, and what it does to the event
loop that also serves ``/metrics`` (issue 18: ``EventLoopLagHigh`` must not page for it).

A real exporter process (the console script, ``tests/abuse/exporter_process.py``) is started;
a flood process opens ``--connections`` keep-alive connections to the public listener and sends
HTTP/1.1 requests pipelined ``--pipeline`` at a time (the cheapest way for a client to make a
server work: one ``send`` of many requests) for ``--seconds``; from this process Prometheus is
played: ``/metrics`` scraped every second on the internal listener. Printed: the requests the
flood sent and the statuses it got, the public listener's throttling counters, the exporter's
CPU (from /proc: on a shared machine, what it was given), the scrapes (all must answer), and the
event-loop lag the exporter recorded during the flood, from its histogram
``passiton_event_loop_lag_seconds`` (ticks, ticks later than 50 ms and 250 ms, the largest
bucket reached, and the p99 as ``histogram_quantile`` computes it: what ``EventLoopLagHigh``
reads, objective 250 ms).

Run: `.venv/bin/python benchmarks/public_flood.py [--seconds 20] [--connections 64]
[--pipeline 32] [--target beacon|stripe|health] [--env NAME=VALUE ...]`. The exporter process
imports the code on ``PYTHONPATH``: before and after are ``PYTHONPATH=<checkout>`` of each, one
after the other (docs/security.md used ``--seconds 300 --target stripe --connections 256
--pipeline 8``: 5 minutes, the window ``EventLoopLagHigh`` reads).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.abuse.exporter_process import ORIGIN, exporter_process

LAG = "passiton_event_loop_lag_seconds"


def samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


TARGETS = {
    # a beacon without its key: refused (401) after the per-client limit has spent its burst (429)
    "beacon": (
        "POST /v1/beacon?key= HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n"
        "Content-Type: text/plain\r\nContent-Length: {length}\r\n\r\n{body}"
    ),
    # an unsigned Stripe webhook: 400 after the per-client limit's burst, then 429
    "stripe": (
        "POST /v1/stripe/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: {length}\r\n\r\n{body}"
    ),
    "health": "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n",
}
BODY = '{"type":"widget.script_error","organization_id":"o","widget_id":"w","error":"x"}'


def request_bytes(target: str) -> bytes:
    return TARGETS[target].format(origin=ORIGIN, length=len(BODY), body=BODY).encode()


async def _connection(
    port: int, request: bytes, pipeline: int, until: float, counts: dict[str, int]
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        counts["connect_failed"] = counts.get("connect_failed", 0) + 1
        return
    burst = request * pipeline
    buffer = b""
    try:
        while time.monotonic() < until:
            writer.write(burst)
            await writer.drain()
            counts["sent"] += pipeline
            answered = 0
            while answered < pipeline:
                chunk = await asyncio.wait_for(reader.read(262144), 10)
                if not chunk:
                    raise ConnectionResetError
                buffer += chunk
                while (start := buffer.find(b"HTTP/1.1 ")) >= 0 and len(buffer) >= start + 12:
                    status = buffer[start + 9 : start + 12].decode()
                    counts[status] = counts.get(status, 0) + 1
                    buffer = buffer[start + 12 :]
                    answered += 1
    except (OSError, ConnectionResetError, TimeoutError, asyncio.IncompleteReadError):
        counts["closed"] = counts.get("closed", 0) + 1
    finally:
        writer.close()


async def _flood(port: int, target: str, connections: int, pipeline: int, seconds: float) -> dict:
    counts: dict[str, int] = {"sent": 0}
    until = time.monotonic() + seconds
    request = request_bytes(target)

    async def worker() -> None:
        while time.monotonic() < until:  # a closed connection is opened again
            await _connection(port, request, pipeline, until, counts)

    await asyncio.gather(*(worker() for _ in range(connections)))
    return counts


def flood(port: int, target: str, connections: int, pipeline: int, seconds: float, out) -> None:
    """In a process of its own: the flood, its counts sent back through ``out``."""
    out.send(asyncio.run(_flood(port, target, connections, pipeline, seconds)))


def lag_buckets(text: str) -> dict[float, float]:
    return {float(s.labels["le"]): s.value for s in samples(text) if s.name == f"{LAG}_bucket"}


def quantile(q: float, buckets: dict[float, float]) -> float:
    """``histogram_quantile`` of cumulative ``buckets`` (upper bound → count), as Prometheus."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total == 0:
        return 0.0
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / (buckets[bound] - below)
        lower, below = bound, buckets[bound]
    return lower


def shed_lines(text: str) -> dict[str, float]:
    return {
        f"{s.name}{s.labels}": s.value
        for s in samples(text)
        if s.name.startswith("passiton_exporter_public_")
        or s.name.startswith("passiton_exporter_beacon_rate_limited")
        or s.name.startswith("passiton_exporter_stripe_rate_limited")
    }


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pipeline", type=int, default=32)
    parser.add_argument("--target", choices=sorted(TARGETS), default="beacon")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the exporter")
    args = parser.parse_args()
    env = {"STRIPE_WEBHOOK_SECRET": "whsec_flood_benchmark", "LOG_LEVEL": "ERROR"}
    env.update(dict(item.split("=", 1) for item in args.env))
    with exporter_process(env) as exporter, httpx.Client(timeout=30) as http:
        time.sleep(1.0)
        before = http.get(f"{exporter.internal}/metrics").text
        cpu_before, started = cpu_seconds(exporter.pid), time.monotonic()
        receive, send = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.Process(
            target=flood,
            args=(
                exporter.public_port,
                args.target,
                args.connections,
                args.pipeline,
                args.seconds,
                send,
            ),
        )
        process.start()
        scrapes: list[int] = []
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            time.sleep(1.0)
            try:
                scrapes.append(http.get(f"{exporter.internal}/metrics").status_code)
            except httpx.HTTPError:
                scrapes.append(0)
        counts = receive.recv()
        process.join()
        cpu = (cpu_seconds(exporter.pid) - cpu_before) / (time.monotonic() - started)
        after = http.get(f"{exporter.internal}/metrics").text
    old, new = lag_buckets(before), lag_buckets(after)
    delta = {bound: new[bound] - old.get(bound, 0.0) for bound in new}
    ticks = delta[float("inf")]
    reached = min((b for b in sorted(delta) if delta[b] == ticks), default=float("inf"))
    late = {limit: ticks - delta[limit] for limit in (0.05, 0.25) if limit in delta}
    print(
        f"flood: {args.target}, {args.connections} connections x {args.pipeline} pipelined, "
        f"{args.seconds:g} s"
    )
    print(f"  sent {counts.pop('sent')} requests; answers {dict(sorted(counts.items()))}")
    print(f"  exporter CPU during the flood: {cpu:.0%} of a core")
    print(f"  scrapes of /metrics: {scrapes.count(200)} of {len(scrapes)} answered 200")
    old_shed, new_shed = shed_lines(before), shed_lines(after)
    for name, value in sorted(new_shed.items()):
        print(f"  {name}: +{value - old_shed.get(name, 0.0):g}")
    print(
        f"  loop ticks {ticks:g}: later than 50 ms {late.get(0.05, 0):g}, later than 250 ms "
        f"{late.get(0.25, 0):g}; every tick within {reached:g} s"
    )
    print(
        f"  p99 lag (histogram_quantile, EventLoopLagHigh's > 0.25): {quantile(0.99, delta):.4f} s"
    )


if __name__ == "__main__":
    main()
