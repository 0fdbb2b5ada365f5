"""The alert console: login, logout, sessions, CSRF on every form, the permission matrix."""

from __future__ import annotations

import uuid

import pytest

from tests import plain_http
from tests.bridge.support import count
from tests.console.support import PASSWORD, csrf_of, dead_delivery, fire, first_alert_url, login


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
    dead = await dead_delivery(console)
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
            {"username": "dana", "role": "viewer", "password": "dana has a long passphrase"},
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
    silences = plain_http.get(f"{console.alertmanager}/api/v2/silences").json()
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
