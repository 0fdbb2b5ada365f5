"""Out of band: a critical alert reaches PagerDuty while the bridge's database is down, and when
it is back the bridge's own page lands on the same incident (one page, not two).

Real parts: the real Alertmanager binary on the repository's alertmanager.yml (rendered as `up`
renders it), the real bridge over HTTP on real PostgreSQL, the fake PagerDuty Events API v2.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

from bridge.app import BRIDGE, create_app
from bridge.channels.config import ChannelsConfig, PagerDutySettings
from bridge.channels.pagerduty import PagerDutyNotifier, group_dedup_key
from bridge.double_paging import alertmanager_pages_pagerduty, double_paging_verdict
from bridge.model import Alert, Message
from passiton_monitoring.stack import (
    FAST,
    Addresses,
    PagerDutyDirect,
    pagerduty_direct,
    render_alertmanager,
    write_yaml,
)
from tests.bridge.support import T0, make_config, wait_until
from tests.conftest import PG_ADMIN_URL
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "alertmanager" / "alertmanager.yml"
ROUTING_KEY = "0123456789abcdef0123456789abcdef"
BRIDGE_CLIENT = "PassItOn monitoring"
DIRECT_CLIENT = "PassItOn Alertmanager (out of band)"


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"none of {names} is installed (make debs installs them)")


def addresses(bridge_port: int) -> Addresses:
    return Addresses(
        exporter="127.0.0.1:9",
        bridge=(f"127.0.0.1:{bridge_port}",),
        prometheus="127.0.0.1:9",
        alertmanager=("127.0.0.1:9",),
        blackbox="127.0.0.1:9",
    )


async def start_alertmanager(tmp_path: Path, config: dict[str, Any]) -> tuple[Any, str]:
    path = write_yaml(tmp_path / "alertmanager.yml", config, SOURCE)
    log = tmp_path / "alertmanager.log"
    for _attempt in range(3):  # another process may take the free port first
        listen = f"127.0.0.1:{free_port()}"
        with log.open("w") as stderr:
            process = await asyncio.create_subprocess_exec(
                binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={path}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address={listen}",
                "--cluster.listen-address=",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        url = f"http://{listen}"
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if process.returncode is not None:
                    break
                try:
                    async with session.get(f"{url}/-/ready") as response:
                        if response.status == 200:
                            return process, url
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
        if process.returncode is None:
            process.terminate()
            await process.wait()
    pytest.fail(f"alertmanager did not start:\n{log.read_text()}")


@pytest.fixture
async def stack(pg_database, fake_pagerduty, aiohttp_server, tmp_path) -> AsyncIterator[Any]:
    """A bridge paging the fake PagerDuty with Alertmanager's dedup_key, and an Alertmanager
    whose critical receiver posts to that bridge and pages the fake PagerDuty itself."""
    channels = ChannelsConfig(
        pagerduty=PagerDutySettings(ROUTING_KEY, fake_pagerduty.events_url, dedup="group")
    )
    config = replace(make_config(pg_database), channels=channels)
    app = create_app(config, workers=True)
    server = await aiohttp_server(app)
    token_file = tmp_path / "bridge-token"
    token_file.write_text(config.webhook_token)
    key_file = tmp_path / "pagerduty-routing-key"
    key_file.write_text(ROUTING_KEY + "\n")
    rendered = render_alertmanager(
        SOURCE,
        addresses(server.port),
        token_file,
        FAST,
        PagerDutyDirect(key_file, fake_pagerduty.events_url),
    )
    process, url = await start_alertmanager(tmp_path, rendered)
    try:
        yield type("Stack", (), {"bridge": app[BRIDGE], "alertmanager": url, "db": pg_database})
    finally:
        process.terminate()
        await process.wait()


async def post_alert(url: str, *, resolved: bool = False) -> None:
    now = datetime.now(UTC).isoformat()
    alert = {
        "labels": {
            "alertname": "PaymentFailureRatioHigh",
            "severity": "critical",
            "category": "payment",
            "organization_id": "org-1",
        },
        "annotations": {"summary": "payments failing", "runbook_url": "docs/runbooks.md"},
        "startsAt": "2026-01-01T00:00:00Z",
    }
    if resolved:
        alert["endsAt"] = now
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/v2/alerts", json=[alert]) as response,
    ):
        assert response.status == 200, await response.text()


async def set_connections(database_url: str, allowed: bool) -> None:
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
    finally:
        await admin.close()


def unavailable(bridge) -> float:
    return bridge.metrics.notifications_received.labels(status="unavailable")._value.get()


@pytest.mark.timeout(180)
async def test_critical_pages_while_the_database_is_down_and_once_when_back(stack, fake_pagerduty):
    bridge = stack.bridge
    await set_connections(stack.db, allowed=False)
    try:
        await post_alert(stack.alertmanager)
        # Alertmanager pages PagerDuty itself while the bridge answers 503.
        await wait_until(lambda: fake_pagerduty.events and unavailable(bridge) >= 1, timeout=60)
        assert {e.get("client") for e in fake_pagerduty.events} == {DIRECT_CLIENT}
        [key] = fake_pagerduty.incidents
        assert fake_pagerduty.incidents == {key: "triggered"}
    finally:
        await set_connections(stack.db, allowed=True)
    # The database is back: Alertmanager's retry is stored, the bridge pages with the same key.
    await wait_until(
        lambda: any(e.get("client") == BRIDGE_CLIENT for e in fake_pagerduty.events), timeout=60
    )
    [row] = await bridge.storage.query("SELECT DISTINCT group_key FROM alert_notifications")
    expected = hashlib.sha256(row["group_key"].encode()).hexdigest()
    assert expected == group_dedup_key(row["group_key"])
    assert {e["dedup_key"] for e in fake_pagerduty.events} == {expected}
    assert fake_pagerduty.incidents == {expected: "triggered"}  # one incident, not two

    await post_alert(stack.alertmanager, resolved=True)

    def resolved_by_both() -> bool:
        resolves = [e for e in fake_pagerduty.events if e["event_action"] == "resolve"]
        return len({e.get("client", BRIDGE_CLIENT) for e in resolves}) == 2

    await wait_until(resolved_by_both, timeout=60)
    assert fake_pagerduty.incidents == {expected: "resolved"}

    # doctor notices the configuration that would page twice.
    assert await alertmanager_pages_pagerduty(stack.alertmanager) is True
    assert double_paging_verdict(True, "group")[0] is True
    ok, detail, fix = double_paging_verdict(True, "alert")
    assert not ok
    assert "two incidents" in detail
    assert fix == "set PAGERDUTY_DEDUP_KEY=group for the bridge"
    assert double_paging_verdict(False, "alert")[0] is True
    assert await alertmanager_pages_pagerduty("http://127.0.0.1:9") is None


async def test_group_dedup_resolves_only_with_the_group(fake_pagerduty):
    def alert(fingerprint: str, status: str) -> Alert:
        labels = {"alertname": "X", "severity": "critical", "category": "payment"}
        return Alert(fingerprint, status, labels, {"summary": "x"}, T0, None)

    notifier = PagerDutyNotifier(ROUTING_KEY, fake_pagerduty.events_url, dedup="group")
    try:
        group = '{}/{severity="critical"}:{alertname="X"}'
        key = group_dedup_key(group)
        assert key == hashlib.sha256(group.encode()).hexdigest()
        firing = Message(group, "firing", "r", (alert("a", "firing"),), group_status="firing")
        await notifier.notify(firing)
        one_resolved = Message(
            group, "resolved", "r", (alert("a", "resolved"),), group_status="firing"
        )
        await notifier.notify(one_resolved)  # b still fires: nothing to tell PagerDuty
        assert [e["event_action"] for e in fake_pagerduty.events] == ["trigger"]
        done = Message(group, "resolved", "r", (alert("b", "resolved"),), group_status="resolved")
        await notifier.notify(done)
        assert [e["event_action"] for e in fake_pagerduty.events] == ["trigger", "resolve"]
        assert fake_pagerduty.incidents == {key: "resolved"}
    finally:
        await notifier.aclose()


def test_up_renders_the_direct_receiver_only_when_the_bridge_uses_the_group_key(tmp_path):
    env = {
        "PAGERDUTY_INTEGRATION_KEY": ROUTING_KEY,
        "PAGERDUTY_EVENTS_URL": "http://127.0.0.1:9/v2/enqueue",
    }
    token = tmp_path / "token"
    assert pagerduty_direct(env, tmp_path) is None  # per-alert keys: a direct page would double
    assert pagerduty_direct({"PAGERDUTY_DEDUP_KEY": "group"}, tmp_path) is None  # no PagerDuty
    plain = render_alertmanager(SOURCE, addresses(1), token, FAST, None)
    assert not any("pagerduty_configs" in r for r in plain["receivers"])

    direct = pagerduty_direct({**env, "PAGERDUTY_DEDUP_KEY": "group"}, tmp_path)
    assert direct is not None
    assert direct.routing_key_file.read_text() == ROUTING_KEY
    assert direct.routing_key_file.stat().st_mode & 0o777 == 0o600
    rendered = render_alertmanager(SOURCE, addresses(1), token, FAST, direct)
    receivers = {r["name"]: r for r in rendered["receivers"]}
    [page] = receivers["bridge-critical"]["pagerduty_configs"]
    assert page["routing_key_file"] == str(direct.routing_key_file)
    assert page["url"] == env["PAGERDUTY_EVENTS_URL"]
    assert "routing_key" not in page
    assert [n for n, r in receivers.items() if "pagerduty_configs" in r] == ["bridge-critical"]


def test_compose_override_pages_out_of_band() -> None:
    override = yaml.safe_load((ROOT / "deploy/compose/pagerduty.yml").read_text())
    services = override["services"]
    assert services["bridge"]["environment"] == {"PAGERDUTY_DEDUP_KEY": "group"}
    [mount] = services["alertmanager"]["volumes"]
    assert mount.split(":")[:2] == [
        "./deploy/compose/alertmanager-pagerduty.yml",
        "/etc/alertmanager/alertmanager.yml",
    ]
    assert override["secrets"] == {
        "pagerduty_integration_key": {"environment": "PAGERDUTY_INTEGRATION_KEY"}
    }
    rendered = yaml.safe_load((ROOT / "deploy/compose/alertmanager-pagerduty.yml").read_text())
    [page] = next(r for r in rendered["receivers"] if r["name"] == "bridge-critical")[
        "pagerduty_configs"
    ]
    assert page["routing_key_file"] == "/run/secrets/pagerduty_integration_key"
    assert services["alertmanager"]["secrets"] == ["pagerduty_integration_key"]
    check = subprocess.run(
        [binary("amtool"), "check-config", str(ROOT / "deploy/compose/alertmanager-pagerduty.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
