"""The worst event-loop stall each kind of request causes, for the exporter and the bridge.

Each service's application is served in this process on a real socket; a probe task yields to
the loop over and over (``await asyncio.sleep(0)``) and keeps the longest time between two of its
turns: the longest the loop ran something else without a break, i.e. the stall. The requests are
sent from a worker thread (httpx), so the client's own work is not on the loop. Each kind is sent
once to warm up, then ``repeat`` times, with fresh values where a cache would help (new user
agents); the worst of the repeats is reported.

Used by ``benchmarks/adversarial_inputs.py`` (``--stalls``). The bridge needs PostgreSQL
(``PASSITON_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/test``): a database is
created for the run and dropped after.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import httpx
from aiohttp import web

from bridge.app import BRIDGE
from bridge.storage import Storage
from exporter.app import PUBLIC, create_app
from exporter.beacon_keys import beacon_key
from exporter.config import ExporterConfig
from exporter.edge import parse_networks
from passiton_monitoring.bridge_process import create_bridge_app
from tests.abuse.adversarial import adversarial
from tests.abuse.bridge_inputs import ADVERSARIAL as BRIDGE_ADVERSARIAL
from tests.bridge.support import AUTH, T0, Clock, am_alert, make_config, notifiers, payload
from tests.console.support import PASSWORD, add_users

GOAL_SECONDS = 0.050
TOKEN = "stall-benchmark-ingest-token-0123456789"
BEACON_SECRET = "stall-benchmark-beacon-secret-0123456789"
STRIPE_SECRET = "whsec_stall_benchmark_0123456789"
ORIGIN = "https://donate.example.org"
PG_ADMIN_URL = os.environ.get("PASSITON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class StallProbe:
    """The longest gap between two turns of a task that does nothing but yield, in wall-clock
    time (``worst``) and in the loop thread's CPU time (``worst_cpu``: the same gap without the
    time the operating system gave the CPU to other processes; on a shared machine it is the
    stall the request itself causes)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_cpu = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        clock, cpu = time.perf_counter, time.thread_time
        last, last_cpu = clock(), cpu()
        while True:
            await asyncio.sleep(0)
            now, now_cpu = clock(), cpu()
            if now - last > self.worst:
                self.worst = now - last
            if now_cpu - last_cpu > self.worst_cpu:
                self.worst_cpu = now_cpu - last_cpu
            last, last_cpu = now, now_cpu

    def reset(self) -> None:
        self.worst = self.worst_cpu = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass
class Kind:
    """One kind of request: ``send(client, i)`` makes the ``i``-th request of that kind."""

    service: str
    name: str
    send: Callable[[httpx.Client, int], httpx.Response]
    expect: int


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def measure(kind: Kind, client: httpx.Client, repeat: int) -> tuple[float, float, int]:
    """The worst stall (wall clock, CPU) over ``repeat`` requests (after one to warm up); the
    last status."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, kind.send, client, 0)
    worst = worst_cpu = 0.0
    status = 0
    for i in range(1, repeat + 1):
        probe = StallProbe()
        probe.start()
        await asyncio.sleep(0.01)  # the probe's baseline: an idle loop
        probe.reset()
        response = await loop.run_in_executor(None, kind.send, client, i)
        await asyncio.sleep(0.01)  # work finishing after the answer counts too
        await probe.stop()
        worst, worst_cpu = max(worst, probe.worst), max(worst_cpu, probe.worst_cpu)
        status = response.status_code
    return worst, worst_cpu, status


# --- the exporter -----------------------------------------------------------------------------


def _agents(i: int, n: int) -> list[dict]:
    return [
        {
            "type": "traffic.request",
            "organization_id": f"org-{j % 50}",
            "country": "US",
            "user_agent": f"Mozilla/5.0 (X11; Linux x86_64; run {i} agent {j}) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) Chrome/{100 + j % 30}.0.{i}.{j} Safari/537.36",
            "ip": f"203.0.{j % 200}.{i % 250}",
        }
        for j in range(n)
    ]


def _adversarial_events(i: int) -> list[dict]:
    texts = list(adversarial(2048).values())
    out = []
    for j in range(360):  # about 1 MiB: the largest body the exporter takes
        text = f"{i}{j}{texts[j % len(texts)]}"[:2048]
        kind = j % 3
        if kind == 0:
            out.append({"type": "traffic.request", "organization_id": "o", "user_agent": text})
        elif kind == 1:
            out.append({"type": "payment.failed", "organization_id": "o", "error": text})
        else:
            out.append({"type": "endpoint.request", "route": text, "method": "GET", "status": 500})
    return out


def _thousand_agents(i: int) -> list[dict]:
    return _agents(i, 1000)


def _nested(c: httpx.Client, base: str, auth: dict[str, str]) -> httpx.Response:
    return c.post(f"{base}/v1/events", content="[" * 100_000 + "]" * 100_000, headers=auth)


def exporter_kinds(base: str, public: str) -> list[Kind]:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    key = beacon_key(BEACON_SECRET, "org-1", "w-1")
    texts = list(adversarial(256).values())
    one_mib = {"type": "payment.failed", "organization_id": "o", "error": "e" * 1_000_000}

    def events(build: Callable[[int], object]) -> Callable[[httpx.Client, int], httpx.Response]:
        return lambda c, i: c.post(f"{base}/v1/events", content=json.dumps(build(i)), headers=auth)

    def beacon(c: httpx.Client, i: int) -> httpx.Response:
        batch = [
            {
                "type": "widget.error",
                "widget_id": "w-1",
                "organization_id": "org-1",
                "error": texts[(i + j) % len(texts)],
            }
            for j in range(20)
        ]
        headers = {"Content-Type": "text/plain", "Origin": ORIGIN, "X-Forwarded-For": f"10.{i}.0.1"}
        return c.post(f"{public}/v1/beacon?key={key}", content=json.dumps(batch), headers=headers)

    def stripe(c: httpx.Client, i: int) -> httpx.Response:
        body = json.dumps(
            {
                "id": f"evt_{i}_{uuid.uuid4().hex}",
                "type": "payment_intent.payment_failed",
                "data": {
                    "object": {
                        "id": "pi_1",
                        "last_payment_error": {
                            "decline_code": texts[i % len(texts)],
                            "message": "x" * 200_000,
                        },
                    }
                },
            }
        ).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(STRIPE_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        headers = {"Stripe-Signature": f"t={stamp},v1={signature.hexdigest()}"}
        return c.post(f"{public}/v1/stripe/webhook", content=body, headers=headers)

    return [
        Kind("exporter", "events: 1,000 events, unique user agents", events(_thousand_agents), 202),
        Kind("exporter", "events: 1 MiB of adversarial text", events(_adversarial_events), 202),
        Kind(
            "exporter", "events: JSON nested 100,000 deep", lambda c, i: _nested(c, base, auth), 400
        ),
        Kind("exporter", "events: one event of 1 MiB", events(lambda i: [one_mib]), 202),
        Kind("exporter", "beacon: 20 adversarial widget errors", beacon, 202),
        Kind("exporter", "stripe: signed event with 200 kB of text", stripe, 200),
        Kind("exporter", "metrics: scrape", lambda c, i: c.get(f"{base}/metrics"), 200),
    ]


@contextlib.asynccontextmanager
async def exporter_server() -> AsyncIterator[tuple[str, str]]:
    config = ExporterConfig(
        ingest_token=TOKEN,
        beacon_secret=BEACON_SECRET,
        stripe_webhook_secret=STRIPE_SECRET,
        cors_origins=(ORIGIN,),
        trusted_proxies=parse_networks(["127.0.0.1"]),
        beacon_rate_per_minute=100_000,
    )
    app = create_app(config)
    internal, base = await _serve(app)
    public, public_base = await _serve(app[PUBLIC])
    try:
        yield base, public_base
    finally:
        await public.cleanup()
        await internal.cleanup()


# --- the bridge -------------------------------------------------------------------------------


def _notification(i: int, size: int = 3_900_000) -> bytes:
    builders = list(BRIDGE_ADVERSARIAL.values())
    alerts, total, j = [], 0, 0
    while total < size:
        text = builders[j % len(builders)](16 * 1024)
        alert = am_alert(
            fingerprint=f"{i:08x}{j:08x}",
            labels={"widget_id": text[:200]},
            annotations={"description": text, "summary": text[:1024]},
        )
        total += len(json.dumps(alert))
        alerts.append(alert)
        j += 1
    return json.dumps(payload(*alerts)).encode()


def bridge_kinds(base: str) -> list[Kind]:
    csrf = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
    bodies: dict[int, bytes] = {}

    def webhook(c: httpx.Client, i: int) -> httpx.Response:
        body = bodies.pop(i, None) or _notification(i)
        return c.post(f"{base}/v1/alertmanager", content=body, headers=AUTH)

    def login(password: str) -> Callable[[httpx.Client, int], httpx.Response]:
        def send(c: httpx.Client, i: int) -> httpx.Response:
            c.cookies.clear()
            token = csrf.search(c.get(f"{base}/console/login").text).group(1)
            form = {"csrf": token, "username": "admin", "password": password}
            # a new address each time: the throttle answers before argon2 otherwise
            headers = {"X-Forwarded-For": f"10.9.{i}.{len(password)}"}
            return c.post(f"{base}/console/login", data=form, headers=headers)

        return send

    return [
        Kind("bridge", "webhook: 3.9 MB adversarial notification", webhook, 200),
        Kind("bridge", "console login: wrong password", login("not the password at all"), 401),
        Kind("bridge", "console login: right password", login(PASSWORD), 303),
    ]


@contextlib.asynccontextmanager
async def bridge_server() -> AsyncIterator[str]:
    name = f"passiton_stalls_{uuid.uuid4().hex[:10]}"
    base_url, _, _ = PG_ADMIN_URL.rpartition("/")
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{base_url}/{name}"
        storage = Storage(url)
        await storage.open()
        await storage.migrate()
        await storage.close()
        config = make_config(
            url,
            alertmanager_url="http://127.0.0.1:9",
            prometheus_url="http://127.0.0.1:9",
            console_trusted_proxies=("127.0.0.1",),
        )
        chans = notifiers("slack", "email", "pagerduty", "sms")
        app = create_bridge_app(config, notifiers=chans, clock=Clock(T0), workers=False)
        runner, base = await _serve(app)
        try:
            await add_users(app[BRIDGE].storage, T0)
            yield base
        finally:
            await runner.cleanup()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(repeat: int, services: tuple[str, ...] = ("exporter", "bridge")) -> list[tuple]:
    """(service, kind, worst stall: wall clock and CPU seconds, last status, expected status)
    per kind."""
    rows: list[tuple] = []
    with httpx.Client(timeout=60, follow_redirects=False) as client:
        if "exporter" in services:
            async with exporter_server() as (base, public):
                for kind in exporter_kinds(base, public):
                    worst, cpu, status = await measure(kind, client, repeat)
                    rows.append((kind.service, kind.name, worst, cpu, status, kind.expect))
        if "bridge" in services:
            async with bridge_server() as base:
                for kind in bridge_kinds(base):
                    worst, cpu, status = await measure(kind, client, repeat)
                    rows.append((kind.service, kind.name, worst, cpu, status, kind.expect))
    return rows


def report(rows: list[tuple]) -> None:
    """The table: the worst stall of each kind, wall clock and CPU (goal: 50 ms)."""
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"\nworst event-loop stall per request (load average {load}; goal <= 50 ms CPU)")
    print(f"{'service':<9} {'request':<44} {'wall ms':>8} {'CPU ms':>8} {'status':>7}")
    for service, name, worst, cpu, status, expect in rows:
        flag = "" if cpu <= GOAL_SECONDS else "  > 50 ms"
        mark = "" if status == expect else f" (expected {expect})"
        print(
            f"{service:<9} {name:<44} {worst * 1e3:>8.1f} {cpu * 1e3:>8.1f} {status:>7}{mark}{flag}"
        )
