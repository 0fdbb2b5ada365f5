"""The exporter as users run it: the console script, real HTTP, SIGTERM; and the database probe."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from exporter.app import REGISTRY, create_app
from exporter.config import ExporterConfig
from exporter.metrics import ExporterMetrics
from exporter.probe import DatabaseProbe
from tests import plain_http
from tests.ports import free_port

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    # one client for the polls: httpx.get builds a TLS context per call (50 ms of CPU)
    with httpx.Client(timeout=1) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{url} did not become ready")


CONSOLE_SCRIPT = str(Path(sys.executable).with_name("passiton-monitoring"))


def test_console_script_serves_and_stops_on_sigterm():
    port, public_port = free_port(), free_port()
    env = {
        **os.environ,
        "EXPORTER_INGEST_TOKEN": "tok-0123456789abcdef",
        "EXPORTER_BEACON_SECRET": "beacon-secret-0123456789",
    }
    proc = subprocess.Popen(
        [
            CONSOLE_SCRIPT,
            "exporter",
            "--listen",
            f"127.0.0.1:{port}",
            "--public-listen",
            f"127.0.0.1:{public_port}",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/-/ready")
        response = plain_http.post(
            f"{base}/v1/events",
            json={"type": "auth.failed", "reason": "invalid_token"},
            headers={"Authorization": "Bearer tok-0123456789abcdef"},
        )
        assert response.status_code == 202
        metrics = plain_http.get(f"{base}/metrics").text
        assert 'passiton_auth_failures_total{reason="invalid_token"} 1.0' in metrics
        public = f"http://127.0.0.1:{public_port}"
        wait_ready(f"{public}/-/ready")
        assert plain_http.get(f"{public}/metrics").status_code == 404
        key = subprocess.run(
            [CONSOLE_SCRIPT, "beacon-key", "--organization", "o", "--widget", "w"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        beacon = plain_http.post(
            f"{public}/v1/beacon",
            params={"key": key},
            json={"type": "widget.script_error", "organization_id": "o", "widget_id": "w"},
        )
        assert beacon.status_code == 202, beacon.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    logs = proc.stderr.read()
    assert '"message": "exporter listening"' in logs
    assert '"event_loop": "uvloop"' in logs
    assert "tok-0123456789abcdef" not in logs


def test_refuses_to_start_without_an_ingest_token():
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    result = subprocess.run(
        [CONSOLE_SCRIPT, "exporter", "--listen", f"127.0.0.1:{free_port()}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "EXPORTER_INGEST_TOKEN must be set" in result.stderr
    no_secret = subprocess.run(
        [CONSOLE_SCRIPT, "beacon-key", "--organization", "o", "--widget", "w"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert no_secret.returncode == 2
    assert "EXPORTER_BEACON_SECRET" in no_secret.stderr


def test_invalid_configuration_is_reported_by_name():
    with pytest.raises(ValueError, match="EXPORTER_MAX_ORGANIZATIONS"):
        ExporterConfig.from_env({"EXPORTER_MAX_ORGANIZATIONS": "lots"})
    for bad in ("-3", "0", "nan", "inf"):
        with pytest.raises(ValueError, match="WIDGET_TIMEOUT_SECONDS"):
            ExporterConfig.from_env({"WIDGET_TIMEOUT_SECONDS": bad})
    with pytest.raises(ValueError, match="EXPORTER_LISTEN"):
        ExporterConfig.from_env({"EXPORTER_LISTEN": "localhost"})
    assert ExporterConfig.from_env({"EXPORTER_LISTEN": "[::1]:9999"}).listen_port == 9999
    with pytest.raises(ValueError, match="EXPORTER_PUBLIC_LISTEN"):
        ExporterConfig.from_env({"EXPORTER_PUBLIC_LISTEN": "nope"})
    assert ExporterConfig.from_env({}).public_listen_port == 9822
    with pytest.raises(ValueError, match="EXPORTER_TRUSTED_PROXIES"):
        ExporterConfig.from_env({"EXPORTER_TRUSTED_PROXIES": "10.0.0.0/8,not-a-network"})


async def test_database_probe_against_real_postgres():
    metrics = ExporterMetrics.create(CollectorRegistry())
    probe = DatabaseProbe(PG_URL, 15, metrics)
    assert await probe.probe_once() is True
    assert metrics.database_probe_up._value.get() == 1
    assert metrics.database_probe_duration._value.get() > 0
    await probe._close()

    down = DatabaseProbe(
        f"postgresql://postgres@127.0.0.1:{free_port()}/test", 15, metrics, timeout=2
    )
    assert await down.probe_once() is False
    assert metrics.database_probe_up._value.get() == 0


async def test_probe_runs_inside_the_app(aiohttp_client):
    app = create_app(
        ExporterConfig(probe_database_url=PG_URL, probe_interval_seconds=0.05, development=True)
    )
    client = await aiohttp_client(app)
    for _ in range(100):
        text = await (await client.get("/metrics")).text()
        if "passiton_database_probe_up 1.0" in text:
            break
        await asyncio.sleep(0.05)
    assert "passiton_database_probe_up 1.0" in text


async def test_unconfigured_probe_exposes_nothing(aiohttp_client):
    """Without PROBE_DATABASE_URL the probe says nothing, not "down": no DatabaseUnreachable."""
    app = create_app(ExporterConfig(development=True))
    client = await aiohttp_client(app)
    text = await (await client.get("/metrics")).text()
    assert "passiton_database_probe" not in text
    assert "passiton_database_probe" not in generate_latest(app[REGISTRY]).decode()
    assert "passiton_payment_attempts_total" in text

    configured = create_app(ExporterConfig(probe_database_url=PG_URL, development=True))
    assert "passiton_database_probe_up" in generate_latest(configured[REGISTRY]).decode()
