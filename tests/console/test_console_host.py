"""The console's seam: a sub-application over a ``ConsoleHost``; the bridge alone serves none,
the bridge process (passiton_monitoring.bridge_process) mounts it under /console/."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry

from bridge.app import BRIDGE, create_app
from bridge.storage import Storage, open_storage
from bridge.storage.console import ConsoleStore
from console.host import ConsoleHost
from console.views import create_console_app
from passiton_monitoring.bridge_process import BridgeConsoleHost, create_bridge_app
from tests.bridge.support import T0, make_config
from tests.console.support import add_users, csrf_of, login


class FakeHost:
    """A host that is not a bridge: real storage, a fixed clock, calls recorded."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.calls: list[str] = []
        self._registry = CollectorRegistry()

    @property
    def registry(self) -> CollectorRegistry:
        return self._registry

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def prometheus_url(self) -> str:
        return "http://127.0.0.1:9"

    @property
    def alertmanager_url(self) -> str:
        return "http://alertmanager.example:9093"

    @property
    def alertmanager_urls(self) -> tuple[str, ...]:
        return (self.alertmanager_url,)

    def queries(self) -> ConsoleStore:
        return self._storage.console()

    def now(self) -> datetime:
        return T0

    def wake_delivery(self) -> None:
        self.calls.append("wake_delivery")

    async def reload_routing(self) -> None:
        self.calls.append("reload_routing")

    def exported_thresholds(self) -> list[tuple[str, str, float]]:
        return [("org-h", "PaymentFailureRatioHigh", 0.42)]

    def incident_actions(self) -> None:
        return None

    def oncall(self) -> None:
        return None

    def calendar_url(self, kind: str, ident: str) -> str:
        return ""

    def web_push(self) -> None:
        return None


async def test_the_bridge_alone_serves_no_console(db_url, aiohttp_client):
    client = await aiohttp_client(create_app(make_config(db_url), notifiers={}, workers=False))
    assert (await client.get("/console/", allow_redirects=False)).status == 404
    assert (await client.get("/-/healthy")).status == 200


async def test_the_bridge_process_mounts_the_console_and_redirects_to_the_slash(
    db_url, aiohttp_client
):
    app = create_bridge_app(make_config(db_url), notifiers={}, workers=False)
    client = await aiohttp_client(app)
    # /console only adds the slash (the session cookie's path is /console/): no cookie set
    response = await client.get("/console", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/console/"
    assert "Set-Cookie" not in response.headers
    response = await client.get("/console/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/console/login?next=")
    assert "X-Frame-Options" in response.headers  # the console's headers on raised redirects
    assert "passiton_console=" in response.headers["Set-Cookie"]
    await add_users(app[BRIDGE].storage, T0)
    await login(client, "viewer")
    response = await client.get("/console", allow_redirects=True)
    assert response.status == 200
    assert response.url.path == "/console/"
    static = await client.get("/console/static/console.css")
    assert static.status == 200


async def test_the_console_runs_over_any_host(db_url, aiohttp_client):
    async with open_storage(db_url) as storage:
        await storage.migrate()
        await add_users(storage, T0)
        host = FakeHost(storage)
        typed: ConsoleHost = host  # the protocol is structural: no bridge needed
        root = web.Application()
        root.add_subapp("/console/", create_console_app(typed, secret="s" * 32, session_seconds=60))
        client = await aiohttp_client(root)
        token = await login(client, "admin")
        page = await client.get("/console/settings?org=org-h")
        assert page.status == 200
        assert 'data-exported="PaymentFailureRatioHigh">0.42<' in await page.text()
        response = await client.post(
            "/console/settings/preferences",
            data={"csrf": token, "org": "org-h", "timezone": "UTC", "min_severity": "low"},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
        assert host.calls == ["reload_routing"]
        assert csrf_of(await (await client.get("/console/")).text())


def test_the_bridge_adapter_is_a_console_host():
    members = {
        name
        for name in dir(ConsoleHost)
        if not name.startswith("_") and name not in dir(object) and name != "mro"
    }
    assert members == {
        "storage",
        "prometheus_url",
        "alertmanager_url",
        "alertmanager_urls",
        "queries",
        "now",
        "wake_delivery",
        "reload_routing",
        "exported_thresholds",
        "registry",
        "incident_actions",
        "oncall",
        "calendar_url",
        "web_push",
    }
    assert members <= set(dir(BridgeConsoleHost))
