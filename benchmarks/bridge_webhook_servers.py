"""The servers of ``benchmarks/bridge_webhook.py``, each run in a process of its own: the bridge
(with its delivery workers and a channel posting to the fake endpoint), the bare bound, the fake
endpoint (``sink``), and the configuration Alerta runs with."""

from __future__ import annotations

import json
import sys

import aiohttp
import asyncpg
from aiohttp import web

from bridge.app import create_app
from bridge.config import BridgeConfig
from bridge.model import Message

TOKEN = "bench-token"
PATH = "/v1/alertmanager"
READY = "/-/ready"


class HttpChannel:
    """A channel that POSTs every message to the fake endpoint (no rate limit)."""

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url
        self.http: aiohttp.ClientSession | None = None

    async def notify(self, message: Message) -> None:
        if self.http is None:
            self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        async with self.http.post(self.url, json={"text": message.title}) as response:
            response.raise_for_status()


def serve_bridge(url: str, port: int, sink: str, profile: bool) -> None:
    config = BridgeConfig(
        database_url=url,
        webhook_token=TOKEN,
        deadman_after_seconds=0,
        maintenance_interval_seconds=3600,
    )
    app = create_app(config, notifiers={"slack": HttpChannel("slack", sink)})
    _run(app, port, profile)


BARE_SCHEMA = """
CREATE TABLE bare_alerts (fingerprint text NOT NULL, starts_at timestamptz NOT NULL,
    status text NOT NULL, labels jsonb NOT NULL, annotations jsonb NOT NULL,
    received_at timestamptz NOT NULL, PRIMARY KEY (fingerprint, starts_at));
CREATE TABLE bare_outbox (id bigserial PRIMARY KEY, group_key text NOT NULL,
    fingerprint text NOT NULL, message jsonb NOT NULL, created_at timestamptz NOT NULL);
"""
BARE_UPSERT = """
INSERT INTO bare_alerts AS t (fingerprint, starts_at, status, labels, annotations, received_at)
SELECT f, s::timestamptz, st, l::jsonb, a::jsonb, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(f, s, st, l, a)
ON CONFLICT (fingerprint, starts_at) DO UPDATE SET status = excluded.status
WHERE t.status <> excluded.status
"""
BARE_OUTBOX = """
INSERT INTO bare_outbox (group_key, fingerprint, message, created_at)
SELECT $1, f, m::jsonb, now() FROM unnest($2::text[], $3::text[]) AS u(f, m)
"""


def serve_bare(url: str, port: int, profile: bool) -> None:
    """The bound: decode, one transaction (upsert + outbox rows), 200."""

    async def startup(app: web.Application) -> None:
        app["pool"] = await asyncpg.create_pool(url, min_size=10, max_size=10)

    async def cleanup(app: web.Application) -> None:
        await app["pool"].close()

    async def handle(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        alerts = data["alerts"]
        fingerprints = [a["fingerprint"] for a in alerts]
        async with request.app["pool"].acquire() as conn, conn.transaction():
            await conn.execute(
                BARE_UPSERT,
                fingerprints,
                [a["startsAt"] for a in alerts],
                [a["status"] for a in alerts],
                [json.dumps(a["labels"]) for a in alerts],
                [json.dumps(a["annotations"]) for a in alerts],
            )
            await conn.execute(
                BARE_OUTBOX, data["groupKey"], fingerprints, [json.dumps(a) for a in alerts]
            )
        return web.Response(text="stored")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post(PATH, handle)
    app.router.add_get(READY, lambda _: web.Response(text="OK"))
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    _run(app, port, profile)


def serve_sink(port: int) -> None:
    """The fake chat endpoint the bridge's channel posts to; GET /count says how many came."""
    received = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", lambda _: web.json_response(received))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


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


# Alerta's severities plus the bridge's (critical/high/medium/low), so one payload fits all.
ALERTA_CONF = """
LOG_LEVEL = "ERROR"
SEVERITY_MAP = {"security": 0, "critical": 1, "major": 2, "high": 2, "minor": 3, "medium": 3,
    "warning": 4, "low": 4, "indeterminate": 5, "informational": 6, "normal": 7, "ok": 7,
    "cleared": 7, "debug": 8, "trace": 9, "unknown": 10}
"""
