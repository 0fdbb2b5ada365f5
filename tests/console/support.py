"""Helpers of the console tests: users per role, logging in, CSRF tokens from the pages, a real
Alertmanager, the ``console`` fixture (the bridge process's app, with the console, on
PostgreSQL), and an outage made of incidents through the bridge's own ingest."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from tests import plain_http
from tests.bridge.support import (
    AUTH,
    am_alert,
    body,
    payload,
)
from tests.ports import free_port

PASSWORD = "correct horse battery staple"
# One argon2 hash for every test user, made with argon2's lowest costs: checking a password
# against the production costs (64 MiB, 3 passes) takes 250 ms of CPU, and the suite logs in
# hundreds of times. The console checks a password with the costs its hash names, so the login
# code is the same; what the console hashes itself (`user add`) keeps the production costs.
PASSWORD_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
ROLES = ("viewer", "responder", "admin")
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def add_users(storage, now) -> None:
    for role in ROLES:
        await storage.console().upsert_user(role, PASSWORD_HASH, role, now)


async def login(client, username: str, password: str = PASSWORD) -> str:
    """Log the test client in; returns a CSRF token of the new session."""
    page = await client.get("/console/login")
    token = csrf_of(await page.text())
    response = await client.post(
        "/console/login",
        data={"csrf": token, "username": username, "password": password},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    home = await client.get("/console/")
    assert home.status == 200
    return csrf_of(await home.text())


def alertmanager_binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("Alertmanager is not installed: `make debs` installs it")


NO_ROUTE = "route:\n  receiver: none\nreceivers:\n  - name: none\n"


@contextmanager
def real_alertmanager(
    config_text: str = NO_ROUTE, *, cluster_port: int = 0, peers: tuple[str, ...] = ()
) -> Iterator[str]:
    """A real Alertmanager (by default with a do-nothing route), for its alerts and silences
    APIs; with ``peers`` (their cluster addresses) a member of their cluster, gossiping on
    ``cluster_port``."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "alertmanager.yml"
        config.write_text(config_text)
        port, cluster = free_port(), cluster_port or free_port()
        joining = [f"--cluster.advertise-address=127.0.0.1:{cluster}"] if peers else []
        joining += [f"--cluster.peer={peer}" for peer in peers]
        process = subprocess.Popen(
            [
                alertmanager_binary(),
                f"--config.file={config}",
                f"--storage.path={tmp}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--cluster.listen-address=127.0.0.1:{cluster}",
                *joining,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if plain_http.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("Alertmanager did not start")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(10)


async def fire(client, **kwargs) -> None:
    response = await client.post(
        "/v1/alertmanager", data=body(payload(am_alert(**kwargs))), headers=AUTH
    )
    assert response.status == 200, await response.text()


async def first_alert_url(client, name: str = "PaymentFailureRateHigh") -> str:
    rows = await client.bridge.storage.query(
        f"SELECT id FROM payment_alerts WHERE alertname = '{name}' ORDER BY id"  # noqa: S608
    )
    return f"/console/alerts/payment_alerts/{rows[-1]['id']}"


async def switch_user(client, role: str) -> str:
    client.session.cookie_jar.clear()
    return await login(client, role)


async def dead_delivery(console) -> int:
    """Marks the latest Slack delivery dead; its id."""
    rows = await console.bridge.storage.query(
        "SELECT id FROM alert_deliveries WHERE channel = 'slack' ORDER BY id DESC LIMIT 1"
    )
    ident = rows[0]["id"]
    await console.bridge.storage.mark_dead(ident, console.clock(), "HTTP 500 from Slack")
    return ident


# -- incidents, made by the bridge's own ingest -------------------------------------------

ORGS = ("org-a", "org-b", "org-c")


async def outage(console) -> None:
    """One incident of four alerts (the same payment alert in three organizations, and the
    database alert upstream of them: the probable cause), one unrelated widget incident, and a
    firing alert stored before incidents existed (no incident)."""
    for n, org in enumerate(ORGS):
        await fire(
            console,
            name="PaymentFailureRatioHigh",
            fingerprint=f"pay{n}",
            organization_id=org,
            severity="high",
        )
    console.clock.advance(30)
    await fire(
        console,
        name="DatabaseErrorsHigh",
        fingerprint="db1",
        category="system",
        organization_id=None,
        severity="critical",
    )
    await fire(
        console,
        name="WidgetLoadErrorRatioHigh",
        fingerprint="wid1",
        category="widget",
        organization_id="org-w",
        severity="medium",
    )
    await fire(console, name="LegacyAlert", fingerprint="old1", organization_id="org-a")
    # as if stored before migration 0004: without its incident (the alert's link is SET NULL)
    await console.bridge.storage.execute(
        "DELETE FROM incidents WHERE id IN"
        " (SELECT incident_id FROM payment_alerts WHERE fingerprint = 'old1')"
    )


async def incident_ids(console) -> dict[str, int]:
    """The incident id of each alert's fingerprint."""
    rows = await console.bridge.storage.query(
        "SELECT fingerprint, incident_id FROM payment_alerts UNION ALL"
        " SELECT fingerprint, incident_id FROM system_alerts UNION ALL"
        " SELECT fingerprint, incident_id FROM widget_alerts"
    )
    return {r["fingerprint"]: r["incident_id"] for r in rows}


async def merge_widget_into_outage(console) -> tuple[int, int]:
    """The widget incident (org-w) as if merged into the outage (org-a, org-b, org-c): a
    survivor that does not touch the absorbed incident's organization. Its ids."""
    ids = await incident_ids(console)
    widget, outage_id = ids["wid1"], ids["pay0"]
    await console.bridge.storage.execute(
        f"UPDATE incidents SET merged_into = {outage_id}, status = 'resolved',"  # noqa: S608
        f" resolved_at = now() WHERE id = {widget}"
    )
    return widget, outage_id


async def alert_path(console, fingerprint: str) -> str:
    for table in ("payment_alerts", "system_alerts", "widget_alerts"):
        rows = await console.bridge.storage.query(
            f"SELECT id FROM {table} WHERE fingerprint = '{fingerprint}'"  # noqa: S608
        )
        if rows:
            return f"/console/alerts/{table}/{rows[0]['id']}"
    raise AssertionError(f"no alert {fingerprint}")
