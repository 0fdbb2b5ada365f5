"""alertmanager/alertmanager.yml: amtool's checks and routing tests, and the real Alertmanager
routing, inhibiting and posting to a local stand-in for the bridge with the token from the
credentials file."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
SEVERITIES = ("critical", "high", "medium", "low")
CATEGORIES = ("payment", "widget", "traffic", "dashboard", "system")
BRIDGE_URL = "http://localhost:9821/v1/alertmanager"


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"none of {names} is installed (make debs installs them)")


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("amtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_amtool_check_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("severity", SEVERITIES)
def test_route_by_severity_for_every_category(severity: str, category: str) -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers=bridge-{severity}",
        "alertname=SomeAlert",
        f"severity={severity}",
        f"category={category}",
        "organization_id=org-1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"bridge-{severity}"


def test_watchdog_has_its_own_route() -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        "--verify.receivers=bridge-watchdog",
        "alertname=Watchdog",
        "severity=low",
        "category=system",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_routes_by_its_severity() -> None:
    for rule in alert_rules():
        labels = {"alertname": rule["alert"], **rule["labels"]}
        expected = "bridge-watchdog" if rule["alert"] == "Watchdog" else None
        expected = expected or f"bridge-{labels['severity']}"
        result = amtool(
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={expected}",
            *(f"{k}={v}" for k, v in labels.items()),
        )
        assert result.returncode == 0, (rule["alert"], result.stdout + result.stderr)


def test_grouping_and_timers() -> None:
    route = config()["route"]
    # Across organizations: the bridge groups alerts into incidents (one page per problem).
    assert route["group_by"] == ["alertname", "category"]
    by_severity = {r["matchers"][0].split("=", 1)[1].strip('"'): r for r in route["routes"][1:]}
    assert list(by_severity) == list(SEVERITIES)
    seconds = {"s": 1, "m": 60, "h": 3600}

    def parse(value: str) -> int:
        return int(value[:-1]) * seconds[value[-1]]

    for timer in ("group_wait", "group_interval", "repeat_interval"):
        values = [parse(by_severity[s][timer]) for s in SEVERITIES]
        assert values == sorted(values), f"{timer} grows as severity falls"
    assert parse(by_severity["critical"]["group_wait"]) <= 10
    watchdog = route["routes"][0]
    assert watchdog["matchers"] == ['alertname="Watchdog"']
    assert (watchdog["group_wait"], watchdog["repeat_interval"]) == ("0s", "1m")


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    parsed = re.fullmatch(r'(\w+)(=~|!=|=)"(.*)"', matcher)
    assert parsed, matcher
    name, op, value = parsed.groups()
    have = labels.get(name, "")
    return {"=": have == value, "!=": have != value, "=~": bool(re.fullmatch(value, have))}[op]


def _timers(labels: dict[str, str]) -> dict[str, str]:
    """The timers of the route ``labels`` end on (Alertmanager's walk: the first matching child,
    recursively; a child inherits what it does not set)."""
    route, timers = config()["route"], {}
    while True:
        timers.update({k: route[k] for k in ("group_wait", "group_interval") if k in route})
        child = next(
            (
                c
                for c in route.get("routes") or []
                if all(_matches(m, labels) for m in c["matchers"])
            ),
            None,
        )
        if child is None:
            return timers
        route = child


def test_strong_evidence_waits_no_longer_than_critical() -> None:
    # a rule's evidence="strong" tier pages at the evaluation that shows it (no `for`), and
    # Alertmanager adds no more than the critical route's group_wait: a storm of declines
    # reaches Slack within 90 s (scrape, two evaluation hops and group_wait); the same alert's
    # evidence="sustained" tier keeps its severity's timers
    critical = _timers({"severity": "critical", "alertname": "Any"})
    strong = [r for r in alert_rules() if r["labels"].get("evidence") == "strong"]
    assert strong, "no rule has a strong-evidence tier"
    for rule in strong:
        labels = {"alertname": rule["alert"], **rule["labels"]}
        assert "for" not in rule, rule["alert"]
        assert _timers(labels) == critical, rule["alert"]
        sustained = _timers({**labels, "evidence": "sustained"})
        assert sustained == _timers({"severity": labels["severity"], "alertname": "Any"})
        if labels["severity"] != "critical":  # a critical alert's tiers share its timers
            assert sustained["group_wait"] != critical["group_wait"]


def test_every_receiver_is_the_bridge_with_the_token_file() -> None:
    receivers = config()["receivers"]
    assert {r["name"] for r in receivers} == {
        "bridge",
        "bridge-watchdog",
        *(f"bridge-{s}" for s in SEVERITIES),
    }
    for receiver in receivers:
        (webhook,) = receiver["webhook_configs"]
        assert webhook["url"] == BRIDGE_URL
        assert webhook["send_resolved"] is True
        auth = webhook["http_config"]["authorization"]
        assert auth["type"] == "Bearer"
        assert "credentials" not in auth  # never a token in the file itself
        assert auth["credentials_file"] == "bridge-token"
    # The token file is generated, never committed.
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "alertmanager/bridge-token"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    assert tracked.returncode != 0, "alertmanager/bridge-token must not be committed"
    assert "alertmanager/bridge-token" in (ROOT / ".gitignore").read_text().splitlines()


def test_inhibit_rules_name_existing_alerts() -> None:
    names = {rule["alert"] for rule in alert_rules()} | {"SomeAlert"}
    for rule in config()["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            match = re.fullmatch(r'alertname(=~?)"([^"]*)"', matcher)
            if match:
                referenced = set(match.group(2).split("|"))
                assert referenced <= names, referenced - names
    targets = " ".join(m for r in config()["inhibit_rules"] for m in r["target_matchers"])
    assert "Watchdog" not in targets


# --- the real Alertmanager -------------------------------------------------------------------


class Bridge:
    """Stands in for the bridge's webhook endpoint and keeps what Alertmanager posts."""

    def __init__(self) -> None:
        self.token = ""
        self.port = 0
        self.posts: list[tuple[str | None, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((request.headers.get("Authorization"), await request.json()))
        self.arrived.set()
        return web.json_response({"status": "stored"})

    async def wait_for(self, receiver: str) -> dict[str, Any]:
        while True:
            for _, payload in self.posts:
                if payload["receiver"] == receiver:
                    return payload
            self.arrived.clear()
            await self.arrived.wait()


@pytest.fixture
async def bridge(aiohttp_server: Any) -> Bridge:
    fake = Bridge()
    app = web.Application()
    app.router.add_post("/v1/alertmanager", fake.handle)
    fake.port = (await aiohttp_server(app)).port
    return fake


@pytest.fixture
async def alertmanager(bridge: Bridge, tmp_path: Path) -> AsyncIterator[str]:
    """The repository's alertmanager.yml, with only the bridge's port changed, next to a freshly
    generated token file (the relative credentials_file resolves as it does in the repository,
    where the token is generated too: none is committed)."""
    text = CONFIG.read_text().replace("localhost:9821", f"127.0.0.1:{bridge.port}")
    (tmp_path / "alertmanager.yml").write_text(text)
    bridge.token = secrets.token_urlsafe(32)
    (tmp_path / "bridge-token").write_text(bridge.token + "\n")
    log = tmp_path / "alertmanager.log"
    for _attempt in range(3):  # another process may take the free port before Alertmanager does
        listen = f"127.0.0.1:{free_port()}"
        with log.open("w") as stderr:
            process = await asyncio.create_subprocess_exec(
                binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address={listen}",
                "--cluster.listen-address=",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            url = f"http://{listen}"
            if await ours_when_ready(url, process, bridge.port):
                yield url
                return
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()
    pytest.fail(f"alertmanager did not start:\n{log.read_text()}")


async def ours_when_ready(url: str, process: asyncio.subprocess.Process, bridge_port: int) -> bool:
    """True once the Alertmanager at ``url`` is ready and is the one started with our config;
    False when the process exited."""
    deadline = asyncio.get_running_loop().time() + 60
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                return False
            try:
                async with session.get(f"{url}/api/v2/status") as response:
                    if response.status == 200:
                        status = await response.json()
                        return f"127.0.0.1:{bridge_port}" in status["config"]["original"]
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    pytest.fail("alertmanager did not become ready")


def alert(alertname: str, severity: str, category: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": alertname, "severity": severity, "category": category, **labels},
        "annotations": {"summary": alertname, "runbook_url": "docs/runbooks.md"},
        "startsAt": datetime.now(UTC).isoformat(),
    }


async def test_real_alertmanager_inhibits_and_posts_to_the_bridge(
    alertmanager: str, bridge: Bridge
) -> None:
    alerts = [
        alert("Watchdog", "low", "system"),
        alert("PaymentFailureRatioHigh", "critical", "payment", organization_id="org-1"),
        alert("PaymentFailureRatioHigh", "high", "payment", organization_id="org-1"),
        alert("PaymentFailureRatioHigh", "high", "payment", organization_id="org-2"),
        alert("PlatformEndpointDown", "critical", "dashboard", instance="https://x/"),
        alert("ApiErrorRatioHigh", "high", "dashboard", route="/api/donations"),
        alert("DatabaseUnreachable", "critical", "dashboard"),
        alert("DatabaseErrorsHigh", "high", "dashboard"),
        alert("StripeWebhookSignatureFailures", "high", "payment"),
        # a decline surge's strong evidence stands for its sustained tier, at its organization
        alert("PaymentDeclineSurge", "high", "payment", organization_id="org-3", evidence="strong"),
        alert(
            "PaymentDeclineSurge", "high", "payment", organization_id="org-3", evidence="sustained"
        ),
        alert(
            "PaymentDeclineSurge", "high", "payment", organization_id="org-4", evidence="sustained"
        ),
        # the platform's traffic drop stands for the organizations' (and the endpoint down
        # above, for both)
        alert("TrafficDropPlatform", "high", "traffic"),
        alert("TrafficDrop", "high", "traffic", organization_id="org-5"),
    ]
    expected = {
        ("TrafficDropPlatform", None),
        ("TrafficDrop", "org-5"),
        ("PaymentDeclineSurge", "org-3"),
        ("PaymentFailureRatioHigh", "org-1"),
        ("ApiErrorRatioHigh", None),
        ("DatabaseErrorsHigh", None),
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{alertmanager}/api/v2/alerts", json=alerts) as response:
            assert response.status == 200, await response.text()
        # the inhibitor learns of new source alerts asynchronously: poll until it settles
        inhibited: set[tuple[str, str | None]] = set()
        try:
            async with asyncio.timeout(60):
                while inhibited != expected:
                    await asyncio.sleep(0.1)
                    async with session.get(f"{alertmanager}/api/v2/alerts") as response:
                        state = await response.json()
                    inhibited = {
                        (a["labels"]["alertname"], a["labels"].get("organization_id"))
                        for a in state
                        if a["status"]["inhibitedBy"]
                    }
        except TimeoutError:
            pytest.fail(f"inhibited {inhibited}, expected {expected}")
    assert len(state) == len(alerts)

    token = bridge.token
    async with asyncio.timeout(60):
        watchdog = await bridge.wait_for("bridge-watchdog")
        critical = await bridge.wait_for("bridge-critical")
    assert watchdog["version"] == "4"
    assert watchdog["groupLabels"] == {"alertname": "Watchdog", "category": "system"}
    assert [a["labels"]["alertname"] for a in watchdog["alerts"]] == ["Watchdog"]
    assert critical["status"] == "firing"
    assert {auth for auth, _ in bridge.posts} == {f"Bearer {token}"}
    # no inhibited alert is ever posted
    posted = {
        (a["labels"]["alertname"], a["labels"]["severity"], a["labels"].get("organization_id"))
        for _, payload in bridge.posts
        for a in payload["alerts"]
    }
    assert ("PaymentFailureRatioHigh", "high", "org-1") not in posted


def test_runbook_states_the_configured_timers() -> None:
    text = (ROOT / "docs" / "runbooks.md").read_text()
    routes = {r["receiver"]: r for r in config()["route"]["routes"]}
    for severity in SEVERITIES:
        route = routes[f"bridge-{severity}"]
        timers = f"{route['group_wait']} / {route['group_interval']} / {route['repeat_interval']}"
        assert re.search(rf"^\| {severity} \|.*\| {re.escape(timers)} \|$", text, re.MULTILINE)
