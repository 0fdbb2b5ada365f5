"""The alert console on PostgreSQL: login, CSRF, roles, every page and action."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from bridge.app import BRIDGE
from bridge.storage import open_storage
from bridge.storage.console import Cursor
from console.cli import cmd_user
from console.whatif import fires
from passiton_monitoring.bridge_process import create_bridge_app
from tests.bridge_support import (
    AUTH,
    T0,
    Clock,
    am_alert,
    body,
    count,
    make_config,
    notifiers,
    payload,
)
from tests.console_support import PASSWORD, add_users, csrf_of, login, real_alertmanager


@pytest.fixture(scope="module")
def alertmanager() -> Iterator[str]:
    with real_alertmanager() as url:
        yield url


@pytest.fixture
async def console(db_url, aiohttp_client, alertmanager):
    chans = notifiers("slack", "email", "pagerduty", "sms")
    clock = Clock(T0)
    config = make_config(
        db_url,
        alertmanager_url=alertmanager,
        prometheus_url="http://127.0.0.1:9",  # nothing listens: "unreachable" is shown
        cooldown_seconds=600,
    )
    app = create_bridge_app(config, notifiers=chans, clock=clock, workers=False)
    client = await aiohttp_client(app)
    client.bridge = app[BRIDGE]
    client.clock = clock
    client.alertmanager = alertmanager
    await add_users(client.bridge.storage, T0)
    return client


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


# -- access ---------------------------------------------------------------------------------


async def test_every_page_needs_a_login(console):
    await fire(console)
    url = await first_alert_url(console)
    for path in ("/console/", "/console/history", "/console/review", "/console/settings", url):
        response = await console.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/console/login?next=")
    page = await console.get("/console/login")
    token = csrf_of(await page.text())
    response = await console.post(f"{url}/acknowledge", data={"csrf": token})
    assert response.status == 401
    assert await count(console.bridge.storage, "alert_acknowledgements") == 0


async def test_login_refuses_wrong_passwords_and_unknown_users(console):
    page = await console.get("/console/login")
    token = csrf_of(await page.text())
    for username, password in (("admin", "wrong password!"), ("nobody", PASSWORD), ("", "")):
        response = await console.post(
            "/console/login",
            data={"csrf": token, "username": username, "password": password},
            allow_redirects=False,
        )
        assert response.status == 401
        assert "Unknown user or wrong password." in await response.text()
    assert (await console.get("/console/", allow_redirects=False)).status == 303
    await login(console, "viewer")
    assert (await console.get("/console/", allow_redirects=False)).status == 200


async def test_login_redirects_only_inside_the_console(console):
    page = await console.get("/console/login")
    token = csrf_of(await page.text())
    for target, expected in (
        ("/console/history?q=x", "/console/history?q=x"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console/", "/console/"),
    ):
        console.session.cookie_jar.clear()
        page = await console.get("/console/login")
        token = csrf_of(await page.text())
        response = await console.post(
            "/console/login",
            data={"csrf": token, "username": "viewer", "password": PASSWORD, "next": target},
            allow_redirects=False,
        )
        assert response.headers["Location"] == expected


async def test_logout_voids_the_session_cookie_everywhere(console):
    token = await login(console, "viewer")
    stolen = console.session.cookie_jar.filter_cookies(console.make_url("/console/"))
    cookie = stolen["passiton_console"].value
    response = await console.post("/console/logout", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303
    again = await console.get(
        "/console/", headers={"Cookie": f"passiton_console={cookie}"}, allow_redirects=False
    )
    assert again.status == 303
    audit = await console.bridge.storage.console().recent_audit(10)
    assert [e.action for e in audit][:2] == ["logout", "login"]


async def test_a_tampered_cookie_is_no_session(console):
    await login(console, "admin")
    cookie = console.session.cookie_jar.filter_cookies(console.make_url("/console/"))
    value = cookie["passiton_console"].value
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    response = await console.get(
        "/console/", headers={"Cookie": f"passiton_console={forged}"}, allow_redirects=False
    )
    # the jar's valid cookie is replaced by the forged one in this request
    assert response.status in (200, 303)
    console.session.cookie_jar.clear()
    response = await console.get(
        "/console/", headers={"Cookie": f"passiton_console={forged}"}, allow_redirects=False
    )
    assert response.status == 303


async def test_csrf_token_is_required_on_every_form(console):
    await fire(console)
    url = await first_alert_url(console)
    token = await login(console, "admin")
    other = "0" * 64
    forms = [
        (f"{url}/acknowledge", {}),
        (f"{url}/silence", {"duration": "1h"}),
        ("/console/deliveries/1/retry", {}),
        ("/console/settings/preferences", {"org": "org-1", "min_severity": "high"}),
        ("/console/settings/thresholds", {"org": "org-1", "alertname": "PaymentTimeoutsHigh"}),
        ("/console/users", {"username": "eve", "role": "admin", "password": "x" * 20}),
        ("/console/logout", {}),
    ]
    for path, data in forms:
        for bad in ({}, {"csrf": other}, {"csrf": token[:-1] + "x"}):
            response = await console.post(path, data={**data, **bad}, allow_redirects=False)
            assert response.status == 403, (path, bad)
            assert "CSRF" in await response.text()
    storage = console.bridge.storage
    assert await count(storage, "alert_acknowledgements") == 0
    assert await count(storage, "notification_preferences") == 0
    assert await count(storage, "alert_configurations") == 0
    assert await count(storage, "console_users", "WHERE username = 'eve'") == 0
    # still logged in: the refused logout did nothing
    assert (await console.get("/console/", allow_redirects=False)).status == 200
    # the login form itself is protected too
    console.session.cookie_jar.clear()
    response = await console.post(
        "/console/login", data={"username": "admin", "password": PASSWORD}, allow_redirects=False
    )
    assert response.status == 403


async def _dead_delivery(console) -> int:
    rows = await console.bridge.storage.query(
        "SELECT id FROM alert_deliveries WHERE channel = 'slack' ORDER BY id DESC LIMIT 1"
    )
    ident = rows[0]["id"]
    await console.bridge.storage.mark_dead(ident, console.clock(), "HTTP 500 from Slack")
    return ident


ACTIONS = {
    # name: (role needed, state the action changes)
    "acknowledge": "responder",
    "silence": "responder",
    "retry": "responder",
    "preferences": "admin",
    "thresholds": "admin",
    "add user": "admin",
    "users page": "admin",
}


@pytest.mark.parametrize("role", ["viewer", "responder", "admin"])
async def test_permission_matrix(console, role):
    rank = {"viewer": 0, "responder": 1, "admin": 2}[role]
    marker = f"matrix {uuid.uuid4()}"
    await fire(console)
    url = await first_alert_url(console)
    token = await login(console, role)
    # every role reads every page
    for path in ("/console/", "/console/history", "/console/review", url):
        assert (await console.get(path)).status == 200, path
    assert (await console.get("/console/settings?org=org-1")).status == 200
    dead = await _dead_delivery(console)
    attempts = {
        "acknowledge": (f"{url}/acknowledge", {"note": "on it"}),
        "silence": (f"{url}/silence", {"duration": "30m", "comment": marker}),
        "retry": (f"/console/deliveries/{dead}/retry", {}),
        "preferences": (
            "/console/settings/preferences",
            {"org": "org-1", "min_severity": "high", "timezone": "UTC"},
        ),
        "thresholds": (
            "/console/settings/thresholds",
            {
                "org": "org-1",
                "alertname": "PaymentTimeoutsHigh",
                "threshold": "0.1",
                "enabled": "on",
            },
        ),
        "add user": (
            "/console/users",
            {"username": "dana", "role": "viewer", "password": "p" * 16},
        ),
    }
    for action, (path, data) in attempts.items():
        needed = {"responder": 1, "admin": 2}[ACTIONS[action]]
        response = await console.post(path, data={"csrf": token, **data}, allow_redirects=False)
        expected = 303 if rank >= needed else 403
        assert response.status == expected, (role, action, await response.text())
    users = await console.get("/console/users", allow_redirects=False)
    assert users.status == (200 if rank == 2 else 403)
    storage = console.bridge.storage
    acks = await count(storage, "alert_acknowledgements")
    prefs = await count(storage, "notification_preferences")
    assert acks == (1 if rank >= 1 else 0)
    assert prefs == (1 if rank == 2 else 0)
    assert await count(storage, "alert_configurations") == (1 if rank == 2 else 0)
    assert await count(storage, "console_users", "WHERE username = 'dana'") == (
        1 if rank == 2 else 0
    )
    states = await storage.delivery_states([dead])
    assert states[dead][0] == ("pending" if rank >= 1 else "dead")
    silences = httpx.get(f"{console.alertmanager}/api/v2/silences").json()
    mine = [s for s in silences if s["comment"] == marker]
    assert len(mine) == (1 if rank >= 1 else 0)
    audited = {e.action for e in await storage.console().recent_audit(50) if e.username == role}
    if rank == 2:
        assert {"acknowledged", "silenced", "retried delivery", "changed preferences"} <= audited
        assert {"changed threshold", "saved user"} <= audited
    elif rank == 1:
        assert audited == {"login", "acknowledged", "silenced", "retried delivery"}
    else:
        assert audited == {"login"}


# -- now, alert, acknowledge ----------------------------------------------------------------


async def test_now_page_groups_firing_alerts_with_delivery_states(console):
    await fire(console, fingerprint="c1", severity="critical", organization_id="org-crit")
    await fire(
        console,
        name="WidgetLoadErrorRatioHigh",
        fingerprint="w1",
        severity="medium",
        category="widget",
        organization_id="org-w",
    )
    await fire(console, name="Gone", fingerprint="r1", status="resolved")
    await login(console, "viewer")
    html = await (await console.get("/console/")).text()
    assert "2 firing" in html
    assert html.index("critical") < html.index("medium")  # most severe group first
    assert "org-crit" in html
    assert "org-w" in html
    assert "Gone" not in html
    # critical went to slack, email, pagerduty and sms; nothing is sent yet (no workers)
    for channel in ("email", "pagerduty", "slack", "sms"):
        assert f"{channel} pending" in html
    assert "https://docs.example/runbooks#x" in html
    assert "updated" in html
    fragment = await (await console.get("/console/?fragment=1")).text()
    assert fragment.startswith('<div id="live"')
    assert "<html" not in fragment


async def test_acknowledge_is_shown_and_stops_repeats_until_resolve_or_escalation(console):
    bridge = console.bridge
    storage = bridge.storage
    t0 = console.clock()

    async def deliveries(fingerprint: str) -> int:
        found = await storage.console().deliveries([fingerprint])
        return len(found)

    # f1 is acknowledged, g1 (another organization) is the control that is not
    for fp, org in (("f1", "org-ack"), ("g1", "org-control")):
        await fire(console, fingerprint=fp, organization_id=org, starts_at=t0)
    url = await first_alert_url(console)
    token = await login(console, "responder")
    response = await console.post(
        f"{url}/acknowledge", data={"csrf": token, "note": "looking <b>now</b>"}
    )
    assert response.status == 200
    page = await response.text()
    assert "Acknowledged by <b>responder</b>" in page
    assert "looking &lt;b&gt;now&lt;/b&gt;" in page  # escaped
    assert "ack responder" in await (await console.get("/console/")).text()
    again = await console.post(f"{url}/acknowledge", data={"csrf": token})
    assert "already acknowledged" in await again.text()
    assert await count(storage, "alert_acknowledgements") == 1

    # both resolve (the resolve of an acknowledged alert is delivered) ...
    console.clock.advance(60)
    for fp, org in (("f1", "org-ack"), ("g1", "org-control")):
        await fire(
            console,
            fingerprint=fp,
            organization_id=org,
            starts_at=t0,
            status="resolved",
            ends_at=console.clock(),
        )
    assert await deliveries("f1") == await deliveries("g1") == 4  # 2 channels x fire, resolve
    # ... and fire again within the cooldown: held back, and Alertmanager's repeat after the
    # cooldown is the repeat the channels would hear
    console.clock.advance(60)
    t1 = console.clock()
    for fp, org in (("f1", "org-ack"), ("g1", "org-control")):
        await fire(console, fingerprint=fp, organization_id=org, starts_at=t1)
    assert await deliveries("f1") == await deliveries("g1") == 4
    html = await (await console.get("/console/")).text()
    newest_f1 = [part.rsplit('action="', 1)[1] for part in html.split('/acknowledge"')[:-1]]
    rows = await storage.query(
        "SELECT id FROM payment_alerts WHERE fingerprint = 'f1' ORDER BY id DESC LIMIT 1"
    )
    target = f"/console/alerts/payment_alerts/{rows[0]['id']}"
    assert target in newest_f1
    await console.post(f"{target}/acknowledge", data={"csrf": token})
    console.clock.advance(600)
    for fp, org in (("f1", "org-ack"), ("g1", "org-control")):
        await fire(console, fingerprint=fp, organization_id=org, starts_at=t1)
    assert await deliveries("g1") == 6  # the control is repeated to its two channels
    assert await deliveries("f1") == 4  # the acknowledged one is not
    metrics = await (await console.get("/metrics")).text()
    assert 'passiton_bridge_suppressed_total{reason="acknowledged"} 1.0' in metrics
    # it escalates: severity is a label, so the critical alert is a new instance, notified
    await fire(
        console,
        fingerprint="f2",
        organization_id="org-ack",
        severity="critical",
        starts_at=console.clock(),
    )
    assert await deliveries("f2") == 4
    # acknowledging a resolved alert is refused
    response = await console.post(f"{url}/acknowledge", data={"csrf": token})
    assert response.status == 409


async def test_alert_page_timeline_links_and_retry_of_a_dead_letter(console):
    await fire(console, fingerprint="t1", severity="high")
    url = await first_alert_url(console)
    storage = console.bridge.storage
    rows = await storage.query("SELECT id FROM alert_deliveries WHERE channel = 'email'")
    email = rows[0]["id"]
    await storage.mark_retry(email, console.clock() + timedelta(seconds=5), "SMTP 451 try later")
    await storage.mark_sent([email], console.clock())
    dead = await _dead_delivery(console)
    token = await login(console, "responder")
    html = await (await console.get(url)).text()
    for text in ("failed, will retry", "SMTP 451 try later", "email, attempt 0", "sent"):
        assert text in html, text
    for text in (
        "fired",
        "received",
        "queued",
        "gave up",
        "HTTP 500 from Slack",
        "Prometheus graph",
        "http://prometheus.test/graph?g0.expr=up",
        f"{console.alertmanager}/#/alerts?filter=",
        "organization_id",
        "runbook",
    ):
        assert text in html, text
    response = await console.post(
        f"/console/deliveries/{dead}/retry",
        data={"csrf": token, "table": "payment_alerts", "alert": url.rsplit("/", 1)[1]},
    )
    assert response.status == 200
    assert f"delivery {dead} queued again" in await response.text()
    state = await console.bridge.storage.delivery_states([dead])
    assert state[dead][0] == "pending"
    again = await console.post(f"/console/deliveries/{dead}/retry", data={"csrf": token})
    assert again.status == 409
    html = await (await console.get(url)).text()
    assert "retried delivery" in html  # the audit trail is on the timeline
    assert "queued again" in html
    assert (await console.get("/console/alerts/payment_alerts/999999")).status == 404
    assert (await console.get("/console/alerts/pg_user/1")).status == 404


async def test_silence_creates_a_real_alertmanager_silence_with_the_alert_matchers(console):
    org = f"org-silence-{uuid.uuid4().hex[:8]}"  # one Alertmanager serves every test
    await fire(console, fingerprint="s1", severity="high", organization_id=org)
    url = await first_alert_url(console)
    token = await login(console, "responder")
    response = await console.post(
        f"{url}/silence", data={"csrf": token, "duration": "4h", "comment": "deploying fix"}
    )
    assert response.status == 200
    assert "silenced for 4h" in await response.text()
    silences = httpx.get(f"{console.alertmanager}/api/v2/silences").json()
    ours = [
        s
        for s in silences
        if {"name": "organization_id", "value": org, "isRegex": False, "isEqual": True}
        in s["matchers"]
    ]
    assert len(ours) == 1
    matchers = {m["name"]: m["value"] for m in ours[0]["matchers"]}
    assert ours[0]["comment"] == "deploying fix"
    assert matchers["alertname"] == "PaymentFailureRateHigh"
    assert all(not m["isRegex"] and m["isEqual"] for m in ours[0]["matchers"])
    assert ours[0]["createdBy"] == "responder"
    bad = await console.post(f"{url}/silence", data={"csrf": token, "duration": "99y"})
    assert bad.status == 400
    html = await (await console.get(url)).text()
    assert "silenced" in html
    assert "duration=4h" in html


async def test_silence_reports_an_unreachable_alertmanager(console):
    await fire(console, fingerprint="s2")
    url = await first_alert_url(console)
    token = await login(console, "responder")
    console.bridge.config = type(console.bridge.config)(
        **{**console.bridge.config.__dict__, "alertmanager_url": "http://127.0.0.1:9"}
    )
    response = await console.post(f"{url}/silence", data={"csrf": token, "duration": "1h"})
    assert response.status == 502
    assert "Alertmanager unreachable" in await response.text()


# -- history --------------------------------------------------------------------------------


async def test_history_filters_search_keyset_pages_and_csv(console, monkeypatch):
    monkeypatch.setattr("console.history.PAGE_SIZE", 3)
    # equal start times across two tables, so the keyset's tie-breaks are exercised
    for i in range(4):
        await fire(console, fingerprint=f"p{i}", organization_id=f"org-{i % 2}")
        await fire(
            console,
            name="WidgetSlowLoads",
            fingerprint=f"w{i}",
            category="widget",
            severity="medium",
            organization_id="org-w",
            starts_at=T0 - timedelta(minutes=i),
            annotations={"summary": f'=HYPERLINK("x") slow widget {i}'},
        )
    await login(console, "viewer")
    seen: list[str] = []
    url = "/console/history"
    pages = 0
    while url:
        html = await (await console.get(url)).text()
        pages += 1
        seen += html.split('data-href="')[1:]
        marker = 'rel="next"'
        if marker not in html:
            break
        href = html[: html.index(marker)].rsplit('href="', 1)[1].split('"')[0]
        url = "/console/history" + href.replace("&amp;", "&")
    assert pages == 3
    assert len(seen) == 8
    assert len({s.split('"')[0] for s in seen}) == 8  # no row twice, none lost
    html = await (await console.get("/console/history?category=widget&severity=medium")).text()
    assert html.count('data-href="') == 3
    assert "PaymentFailureRateHigh" not in html
    html = await (await console.get("/console/history?q=slow+widget+2")).text()
    assert html.count('data-href="') == 1
    html = await (
        await console.get("/console/history?q=100%25")
    ).text()  # LIKE wildcards are literal
    assert html.count('data-href="') == 0
    html = await (await console.get("/console/history?org=org-1&status=firing")).text()
    assert html.count('data-href="') == 2
    since = (T0 - timedelta(minutes=1, seconds=30)).isoformat()
    html = await (
        await console.get("/console/history", params={"since": since, "category": "widget"})
    ).text()
    assert html.count('data-href="') == 2
    for bad in ("severity=urgent", "category=nope", "since=yesterday", "after=garbage", "status=x"):
        assert (await console.get(f"/console/history?{bad}")).status == 400, bad
    export = await console.get("/console/history?format=csv")
    assert export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await export.text())))
    assert rows[0][:3] == ["starts_at", "ends_at", "status"]
    assert len(rows) == 9
    summaries = [r[7] for r in rows[1:] if r[5] == "WidgetSlowLoads"]
    assert all(s.startswith("'=HYPERLINK") for s in summaries)  # no formula injection


def test_cursor_round_trip_and_refusals():
    cursor = Cursor(T0, "widget_alerts", 42)
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "!!!", Cursor(T0, "pg_authid", 1).encode(), "eHx5fHo"):
        with pytest.raises(ValueError):
            Cursor.decode(bad)


# -- settings -------------------------------------------------------------------------------


async def test_settings_validate_and_save_and_the_threshold_is_exported(console):
    await fire(console, organization_id="org-set")
    token = await login(console, "admin")
    page = await (await console.get("/console/settings")).text()
    assert "org-set" in page
    bad_forms = [
        ({"channels_critical": "slack, telegram"}, "unknown telegram"),
        ({"email": "not-an-address"}, "e-mail address not valid"),
        ({"sms": "0170 123456"}, "E.164"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"quiet_hours_start": "22:00"}, "both a start and an end"),
        ({"quiet_hours_start": "25:00", "quiet_hours_end": "07:00"}, "expected HH:MM"),
        ({"min_severity": "urgent"}, "minimum severity"),
    ]
    for form, problem in bad_forms:
        response = await console.post(
            "/console/settings/preferences",
            data={"csrf": token, "org": "org-set", "timezone": "UTC", **form},
        )
        assert response.status == 400, form
        assert problem in await response.text(), form
    assert await count(console.bridge.storage, "notification_preferences") == 0
    response = await console.post(
        "/console/settings/preferences",
        data={
            "csrf": token,
            "org": "org-set",
            "channels_critical": "pagerduty sms",
            "channels_high": "slack",
            "email": "ops@example.com",
            "sms": "+14155550100",
            "min_severity": "medium",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "timezone": "Europe/Berlin",
        },
    )
    assert response.status == 200
    html = await response.text()
    assert "preferences saved" in html
    pref = await console.bridge.storage.console().preference("org-set")
    assert pref.channels == {"critical": ["pagerduty", "sms"], "high": ["slack"]}
    assert pref.recipients == {"email": ["ops@example.com"], "sms": ["+14155550100"]}
    assert pref.timezone == "Europe/Berlin"
    assert str(pref.quiet_hours_start) == "22:00:00"
    for threshold, problem in (("1.5", "within"), ("abc", "not a number"), ("nan", "within")):
        response = await console.post(
            "/console/settings/thresholds",
            data={
                "csrf": token,
                "org": "org-set",
                "alertname": "PaymentFailureRatioHigh",
                "threshold": threshold,
                "enabled": "on",
            },
        )
        assert response.status == 400
        assert problem in await response.text()
    response = await console.post(
        "/console/settings/thresholds",
        data={"csrf": token, "org": "org-set", "alertname": "NotTunable", "threshold": "0.3"},
    )
    assert response.status == 400
    response = await console.post(
        "/console/settings/thresholds",
        data={
            "csrf": token,
            "org": "org-set",
            "alertname": "PaymentFailureRatioHigh",
            "threshold": "0.35",
            "enabled": "on",
        },
    )
    assert response.status == 200
    html = await response.text()
    assert 'data-exported="PaymentFailureRatioHigh">0.35<' in html
    assert "Prometheus unreachable" in html
    metrics = await (await console.get("/metrics")).text()
    assert (
        'passiton_alert_threshold{alertname="PaymentFailureRatioHigh",organization_id="org-set"}'
        " 0.35" in metrics
    )
    response = await console.post(
        "/console/settings/thresholds",
        data={
            "csrf": token,
            "org": "org-set",
            "alertname": "PaymentFailureRatioHigh",
            "delete": "1",
        },
    )
    assert response.status == 200
    metrics = await (await console.get("/metrics")).text()
    assert 'organization_id="org-set"' not in metrics
    assert (await console.get("/console/settings?org=bad%20org!")).status == 400


async def test_admin_adds_users_with_validation(console):
    token = await login(console, "admin")
    for form, problem in (
        ({"username": "a b", "role": "viewer", "password": "p" * 16}, "user name"),
        ({"username": "bo", "role": "root", "password": "p" * 16}, "role must be"),
        ({"username": "bo", "role": "viewer", "password": "short"}, "at least 12"),
    ):
        response = await console.post("/console/users", data={"csrf": token, **form})
        assert response.status == 400
        assert problem in await response.text()
    response = await console.post(
        "/console/users",
        data={"csrf": token, "username": "bo", "role": "responder", "password": "a long password"},
    )
    assert "bo saved as responder" in await response.text()
    console.session.cookie_jar.clear()
    await login(console, "bo", "a long password")


# -- review ---------------------------------------------------------------------------------


async def test_review_counts_response_times_self_resolves_and_noise(console):
    console.clock.now = T0 + timedelta(days=2)
    for i in range(3):
        start = T0 + timedelta(hours=i)
        await fire(console, fingerprint="n1", starts_at=start, organization_id="org-noisy")
        await fire(
            console,
            fingerprint="n1",
            starts_at=start,
            organization_id="org-noisy",
            status="resolved",
            ends_at=start + timedelta(minutes=2),
        )
    await fire(console, name="SlowOne", fingerprint="q1", starts_at=T0, organization_id="org-q")
    url = await first_alert_url(console, "SlowOne")
    token = await login(console, "responder")
    console.clock.now = T0 + timedelta(minutes=6)
    await console.post(f"{url}/acknowledge", data={"csrf": token})
    console.clock.now = T0 + timedelta(days=2)
    review = await console.bridge.storage.console().review(
        T0 - timedelta(days=1), T0 + timedelta(days=2), 600, 50
    )
    rows = {r.alertname: r for r in review.rows}
    noisy = rows["PaymentFailureRateHigh"]
    assert (noisy.fired, noisy.refires, noisy.self_resolved) == (3, 2, 3)
    assert noisy.resolve_median == pytest.approx(120)
    assert rows["SlowOne"].ack_median == pytest.approx(360)
    assert review.noisiest[0] == ("org-noisy", 3)
    assert review.daily == [("2026-03-01", 4)]
    html = await (await console.get("/console/review?days=7")).text()
    assert "org-noisy" in html
    assert "6m00s" in html
    assert "<svg" in html
    assert (await console.get("/console/review?days=0")).status == 400
    whatif = await (
        await console.get(
            "/console/review?days=7&whatif_alert=PaymentTimeoutsHigh&whatif_threshold=0.3"
        )
    ).text()
    assert "Prometheus unreachable" in whatif
    whatif = await (
        await console.get(
            "/console/review?days=7&whatif_alert=PaymentTimeoutsHigh&whatif_threshold=7"
        )
    ).text()
    assert "must be within" in whatif


def test_what_if_counts_runs_that_last_the_for_duration():
    step = 60.0
    samples = [0, 60, 120, 180, 600, 660, 1200, 1260, 1320, 1380, 1440]
    assert fires([float(s) for s in samples], step, 120) == [120.0, 1320.0]
    assert fires([float(s) for s in samples], step, 0) == [0.0, 600.0, 1200.0]
    assert fires([], step, 60) == []


# -- the command line -----------------------------------------------------------------------


class _Stdin(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_user_add_reads_the_password_from_stdin_and_hashes_it(db_url, capsys):
    config = make_config(db_url)
    args = argparse.Namespace(name="carol", role="responder")
    assert cmd_user(args, config, _Stdin("short\n")) == 2
    assert "at least 12" in capsys.readouterr().err
    assert cmd_user(args, config, _Stdin("a long enough secret\n")) == 0
    assert "carol saved with role responder" in capsys.readouterr().out
    bad = argparse.Namespace(name="no spaces allowed", role="viewer")
    assert cmd_user(bad, config, _Stdin("a long enough secret\n")) == 2

    async def stored():
        async with open_storage(db_url) as storage:
            return await storage.console().get_user("carol")

    user = asyncio.run(stored())
    assert user.role == "responder"
    assert user.password_hash.startswith("$argon2id$")
    assert "a long enough secret" not in user.password_hash
