"""The bridge's subcommands as real processes: migrate, purge, test-alerts, doctor, bridge."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from bridge.app import Bridge
from bridge.commands import parse_duration
from bridge.storage import open_storage
from bridge.storage.migrations import load_migrations
from bridge.webhook import parse_notification
from tests.bridge.support import (
    AUTH,
    TOKEN,
    Clock,
    alert_rows,
    am_alert,
    body,
    count,
    make_config,
    notifiers,
    payload,
    wait_until,
)
from tests.conftest import _admin, _pg_url
from tests.ports import free_port

CHANNEL_VARS = (
    "SLACK_WEBHOOK_URL",
    "SMTP_HOST",
    "ALERT_EMAIL_RECIPIENTS",
    "ALERT_SMS_RECIPIENTS",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_PHONE_NUMBER",
    "PAGERDUTY_INTEGRATION_KEY",
    "DATABASE_URL",
    "BRIDGE_WEBHOOK_TOKEN",
)


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in CHANNEL_VARS}
    return {**base, **extra}


async def cli(*args: str, environ: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "passiton_monitoring",
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def empty_db_url():
    """An empty database (no migrations yet)."""
    name = f"passiton_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    yield _pg_url(name)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_migrate_is_idempotent(empty_db_url):
    environ = env(DATABASE_URL=empty_db_url)
    code, out, err = await cli("migrate", environ=environ)
    assert code == 0, err
    versions = [m.version for m in load_migrations()]
    assert versions[0] == "0001_initial"
    assert versions[:2] == ["0001_initial", "0002_console"]
    assert out.strip().splitlines() == [f"applied {v}" for v in versions]
    code, out, _ = await cli("migrate", environ=environ)
    assert code == 0
    assert out.strip() == "database schema is up to date"
    async with open_storage(empty_db_url) as storage:
        assert sorted(await storage.applied_migrations()) == versions
        assert await storage.pending_migrations() == []
        for table in (
            "payment_alerts",
            "widget_alerts",
            "traffic_alerts",
            "dashboard_alerts",
            "system_alerts",
            "alert_configurations",
            "notification_preferences",
            "traffic_baselines",
            "endpoint_metrics",
            "widget_analytics",
            "dashboard_metrics",
            "alert_deliveries",
            "console_users",
            "alert_acknowledgements",
            "console_audit",
            "delivery_alerts",
            "alert_suppression",
        ):
            assert await count(storage, table) == 0
        without_rls = await storage.query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity"
        )
        assert without_rls == []


async def test_concurrent_migrations_apply_once(pg_template):
    name = f"passiton_empty_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        storages = [open_storage(_pg_url(name)) for _ in range(3)]
        for storage in storages:
            await storage.open()
        results = await asyncio.gather(*(s.migrate() for s in storages))
        versions = [m.version for m in load_migrations()]
        assert sorted(results) == [[], [], versions]
        for storage in storages:
            await storage.close()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_parse_duration():
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("7") == timedelta(days=7)
    for bad in ("", "ninety days", "-1d", "0d", "5y"):
        with pytest.raises(Exception, match="duration"):
            parse_duration(bad)


async def test_purge_deletes_only_old_rows(db_url):
    now = datetime.now(UTC)
    clock = Clock(now - timedelta(days=100))
    bridge = Bridge(make_config(db_url), notifiers("slack"), clock=clock)
    await bridge.start(workers=False)
    try:
        old = am_alert(fingerprint="old", starts_at=clock())
        await bridge.ingest(parse_notification(body(payload(old))))
        await bridge.delivery.run_once()
        clock.now = now
        await bridge.ingest(parse_notification(body(payload(am_alert(fingerprint="new")))))
        # overrides: one that ended 31 days ago, one that ended 29 days ago, one to come
        for reason, ended in (("old", 31), ("recent", 29), ("coming", -7)):
            end = now - timedelta(days=ended)
            start = end - timedelta(days=1)
            await bridge.storage.add_override("primary", "alice", start, end, reason=reason)
    finally:
        await bridge.stop()
    code, out, err = await cli(
        "purge", "--older-than", "30d", environ=env(DATABASE_URL=db_url, RETENTION_DAYS="365")
    )
    assert code == 0, err
    assert "payment_alerts: 1 deleted" in out
    assert "alert_deliveries: 1 deleted" in out
    assert "oncall_overrides: 1 deleted" in out
    async with open_storage(db_url) as storage:
        assert [r["fingerprint"] for r in await alert_rows(storage)] == ["new"]
        assert await count(storage, "alert_notifications") == 1
        assert await count(storage, "alert_deliveries", "WHERE state = 'pending'") == 1
        left = await storage.query("SELECT reason FROM oncall_overrides ORDER BY ends_at")
        assert [r["reason"] for r in left] == ["recent", "coming"]
    code, out, _ = await cli("purge", "--older-than", "soon", environ=env(DATABASE_URL=db_url))
    assert code == 2


async def test_test_alerts_reports_each_channel(pg_database, fake_slack):
    url = pg_database
    environ = env(DATABASE_URL=url, SLACK_WEBHOOK_URL=fake_slack.webhook_url)
    code, out, err = await cli("test-alerts", "--timeout", "10", environ=environ)
    assert code == 0, out + err
    assert out.strip() == "slack: ok"
    assert len(fake_slack.messages) == 1
    assert "PassItOnTestAlert" in json.dumps(fake_slack.messages[0])

    fake_slack.script(503, "service_unavailable")  # transient, then fine
    code, out, _ = await cli("test-alerts", "--timeout", "10", environ=environ)
    assert code == 0, out
    assert len(fake_slack.messages) == 2

    fake_slack.script(404, "no_service")  # permanent
    code, out, _ = await cli("test-alerts", "--timeout", "10", environ=environ)
    assert code == 1
    assert out.startswith("slack: failed")


async def _ready_server(status: int):
    async def ready(_: web.Request) -> web.Response:
        return web.Response(status=status, text="ready")

    app = web.Application()
    app.router.add_get("/-/ready", ready)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_doctor(db_url, fake_slack):
    prom, prom_url = await _ready_server(200)
    am, am_url = await _ready_server(503)
    try:
        environ = env(
            DATABASE_URL=db_url,
            BRIDGE_WEBHOOK_TOKEN=TOKEN,
            SLACK_WEBHOOK_URL=fake_slack.webhook_url,
            PROMETHEUS_URL=prom_url,
            ALERTMANAGER_URL=am_url,
        )
        assert (await cli("migrate", environ=environ))[0] == 0
        code, out, err = await cli("doctor", environ=environ)
        assert code == 1, out + err
        lines = out.splitlines()
        assert "[  ok] database: " + db_url.split("://")[0] + " answers" in lines
        assert "[  ok] migrations: schema up to date" in lines
        assert "[warn] watchdog: no bridge has run yet" in lines
        assert any(line.startswith("[  ok] slack endpoint: 127.0.0.1:") for line in lines)
        assert any(line.startswith("[  ok] prometheus: ") for line in lines)
        assert any(line.startswith("[FAIL] alertmanager: ") for line in lines)
        assert "1 check(s) failed" in lines
        assert fake_slack.requests == []  # checked without sending anything

        async with open_storage(db_url) as storage:
            await storage.execute(
                "INSERT INTO bridge_state (key, value) VALUES ('deadman', 'down')"
            )
        code, out, _ = await cli("doctor", environ=environ)
        assert "[FAIL] watchdog: the dead man's switch has fired: pipeline down" in out

        code, out, _ = await cli(
            "doctor", environ={**environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
        )
        assert code == 1
        assert "[FAIL] database: postgresql:" in out
        assert "fix: check DATABASE_URL" in out
    finally:
        await prom.cleanup()
        await am.cleanup()


async def test_bridge_process_receives_delivers_and_stops_on_sigterm(db_url, fake_slack):
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "passiton_monitoring",
        "bridge",
        "--listen",
        f"127.0.0.1:{port}",
        env=env(
            DATABASE_URL=db_url,
            BRIDGE_WEBHOOK_TOKEN=TOKEN,
            SLACK_WEBHOOK_URL=fake_slack.webhook_url,
            BRIDGE_DEADMAN_AFTER_SECONDS="0",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{base}/-/ready") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await wait_until(ready, timeout=30)
            data = body(payload(am_alert(severity="medium")))
            async with http.post(f"{base}/v1/alertmanager", data=data, headers=AUTH) as response:
                assert response.status == 200
            await wait_until(lambda: fake_slack.messages, timeout=30)

            async def recorded() -> bool:
                # The outcome is recorded (and counted) just after the send.
                async with http.get(f"{base}/metrics") as response:
                    text = await response.text()
                return 'deliveries_total{channel="slack",outcome="success"} 1.0' in text

            await wait_until(recorded, timeout=30)
            assert len(fake_slack.messages) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    logs = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert any(entry["message"] == "bridge stopped" for entry in logs)
    assert TOKEN not in err.decode()
    assert fake_slack.webhook_url not in err.decode()
