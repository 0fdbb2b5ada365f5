"""Attacks on the console and the webhook's timestamps (issue 18), one test each, against the
bridge process's application (bridge + console) on PostgreSQL: no request an attacker (or an
odd alert) can make is answered 5xx."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import pytest

from bridge.app import BRIDGE
from passiton_monitoring.bridge_process import create_bridge_app
from tests.bridge.support import (
    AUTH,
    T0,
    BridgeClient,
    Clock,
    am_alert,
    body,
    make_config,
    notifiers,
    payload,
)
from tests.console.support import add_users, first_alert_url, login

FAR = "9999-12-31T23:59:59-23:59"


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.fixture
async def console(db_url, aiohttp_client):
    clock = Clock(T0)
    config = make_config(
        db_url, alertmanager_url="http://127.0.0.1:9", prometheus_url="http://127.0.0.1:9"
    )
    chans = notifiers("slack", "email", "pagerduty", "sms")
    app = create_bridge_app(config, notifiers=chans, clock=clock, workers=False)
    client = BridgeClient(await aiohttp_client(app), app[BRIDGE], chans, clock)
    await add_users(client.bridge.storage, T0)
    return client


def _raw_alert(starts_at: str, fingerprint: str = "f00dfeed000000aa") -> dict:
    alert = am_alert(fingerprint=fingerprint)
    alert["startsAt"] = starts_at
    return alert


async def test_a_far_future_starts_at_is_a_400_with_the_reason(console):
    data = body(payload(_raw_alert(FAR)))
    response = await console.post("/v1/alertmanager", data=data, headers=AUTH)
    assert response.status == 400, await response.text()
    assert "startsAt" in (await response.json())["reason"]


async def test_an_absurd_alert_does_not_cost_its_group_the_notification(console):
    good = am_alert(fingerprint="f00dfeed000000bb")
    odd = _raw_alert("0001-01-01T00:00:00Z")
    response = await console.post("/v1/alertmanager", data=body(payload(good, odd)), headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json())["alerts"] == 1
    rows = await console.bridge.storage.query("SELECT min(starts_at) AS m FROM payment_alerts")
    assert rows[0]["m"].year >= 2000
    await login(console, "viewer")
    assert (await console.get("/console/")).status == 200


@pytest.mark.parametrize(
    "stored", ["0001-01-01T00:00:00Z", "0002-01-01 00:00:00 BC", "infinity", "-infinity"]
)
async def test_the_pages_survive_an_absurd_stored_time(console, stored):
    response = await console.post("/v1/alertmanager", data=body(payload(am_alert())), headers=AUTH)
    assert response.status == 200
    await console.bridge.storage.execute(
        f"UPDATE payment_alerts SET starts_at = '{stored}'"  # noqa: S608 - the test's own value
    )
    await login(console, "viewer")
    incident = (await console.bridge.storage.query("SELECT id FROM incidents"))[0]["id"]
    for path in (
        "/console/",
        f"/console/?open={incident}",
        f"/console/incidents/{incident}",
        await first_alert_url(console),
        "/console/history?format=csv",
    ):
        page = await console.get(path)
        assert page.status == 200, (path, await page.text())


@pytest.mark.parametrize(
    "path",
    [
        "/console/alerts/payment_alerts/99999999999999999999",
        "/console/alerts/payment_alerts/-99999999999999999999",
        "/console/history?q=a%00b",
        "/console/history?org=a%00b",
        "/console/history?alertname=%00",
        f"/console/history?since={FAR}",
        "/console/history?until=0001-01-01T00:00:00%2B23:59",
        f"/console/history?after={_cursor(FAR + '|payment_alerts|1')}",
        f"/console/history?after={_cursor('2026-01-01T00:00:00+00:00|payment_alerts|' + '9' * 20)}",
        "/console/history?after=%00",
        "/console/review?days=" + "9" * 5000,
        "/console/incidents/99999999999999999999",
        "/console/incidents/-99999999999999999999",
        "/console/incidents/%00",
        "/console/?open=99999999999999999999",
        "/console/?open=%00&open=-1",
    ],
)
async def test_console_queries_are_never_a_5xx(console, path):
    await login(console, "viewer")
    response = await console.get(path)
    assert response.status < 500, (path, response.status, await response.text())


async def test_a_nul_in_an_acknowledgement_note_is_not_a_5xx(console):
    response = await console.post("/v1/alertmanager", data=body(payload(am_alert())), headers=AUTH)
    assert response.status == 200
    csrf = await login(console, "responder")
    url = await first_alert_url(console)
    answer = await console.post(
        f"{url}/acknowledge", data={"csrf": csrf, "note": "on it\x00"}, allow_redirects=False
    )
    assert answer.status < 500, await answer.text()
    rows = await console.bridge.storage.query("SELECT note FROM alert_acknowledgements")
    assert rows
    assert "\x00" not in rows[0]["note"]


async def test_a_nul_in_an_incident_acknowledgement_note_is_not_a_5xx(console):
    response = await console.post("/v1/alertmanager", data=body(payload(am_alert())), headers=AUTH)
    assert response.status == 200
    csrf = await login(console, "responder")
    incident = (await console.bridge.storage.query("SELECT id FROM incidents"))[0]["id"]
    answer = await console.post(
        f"/console/incidents/{incident}/acknowledge",
        data={"csrf": csrf, "note": "on it\x00"},
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    rows = await console.bridge.storage.query(
        "SELECT a.note, e.detail::text AS detail FROM alert_acknowledgements a, incident_events e"
        " WHERE e.kind = 'acknowledged'"
    )
    assert len(rows) == 1
    assert "\x00" not in rows[0]["note"]
    assert "\\u0000" not in rows[0]["detail"]


def test_far_constant_is_beyond_python() -> None:
    with pytest.raises(OverflowError):
        datetime.fromisoformat(FAR).astimezone(UTC)


# --- Slow and large forms (issue 18, 2): the webhook's body timeout and size limit -------------


@pytest.fixture
async def slow_console(db_url, aiohttp_client):
    config = make_config(db_url, body_timeout_seconds=0.5, max_body_bytes=64 * 1024)
    app = create_bridge_app(config, notifiers={}, clock=Clock(T0), workers=False)
    return await aiohttp_client(app)


async def _raw(client, head: bytes, body: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head + body)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read(65536)
    finally:
        writer.close()


@pytest.mark.parametrize("path", ["/console/login", "/console/users", "/console/logout"])
async def test_a_form_body_that_never_arrives_is_a_408(slow_console, path):
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    answer = await _raw(slow_console, head, b"csrf=")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def test_a_form_over_the_size_limit_is_a_413(slow_console):
    big = b"a=" + b"x" * (128 * 1024)
    response = await slow_console.post(
        "/console/login",
        data=big,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 413


# --- The session cookie over TLS (issue 18, 4) ------------------------------------------------


async def test_the_cookie_is_secure_and_host_only_behind_an_https_public_url(
    db_url, aiohttp_client
):
    config = make_config(db_url, console_public_url="https://ops.example.org/console/")
    app = create_bridge_app(config, notifiers={}, clock=Clock(T0), workers=False)
    client = await aiohttp_client(app)
    page = await client.get("/console/login")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-passiton_console=")
    assert "Secure" in cookie
    assert "Path=/;" in cookie
    assert "Domain" not in cookie
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_the_cookie_stays_on_the_console_path_over_plain_http(console):
    page = await console.get("/console/login")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("passiton_console=")
    assert "Secure" not in cookie
    assert "Path=/console/" in cookie
    assert "Strict-Transport-Security" not in page.headers
