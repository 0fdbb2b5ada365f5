"""The console as a web app, and Web Push to it (without a browser: test_console_push_browser.py
has Chromium): the manifest and service worker served without a session, a browser's
subscription stored and removed from the device page, an on-call step with ``via: push``
reaching the fake push service (which checks the VAPID JWT and decrypts the page), and the
notification's Acknowledge: the page's single-use token, no session, no CSRF."""

from __future__ import annotations

import html
import json

import pytest

from tests.console.push_support import KEYS, page_by_push, push_console
from tests.console.support import csrf_of, fire, login


@pytest.fixture
async def pushing(
    db_url, aiohttp_client, tmp_path, console_alertmanager, fake_push, client_ssl_context
):
    async with push_console(
        db_url, aiohttp_client, tmp_path, console_alertmanager, fake_push, client_ssl_context
    ) as console:
        yield console


async def test_the_web_app_files_need_no_session(console):
    manifest = await console.get("/console/manifest.webmanifest")
    assert manifest.status == 200
    assert manifest.content_type == "application/manifest+json"
    app = await manifest.json()
    assert app["start_url"] == app["scope"] == "/console/"
    assert app["display"] == "standalone"
    for icon in app["icons"]:
        image = await console.get(icon["src"])
        assert image.status == 200
        assert (await image.read())[:8] == b"\x89PNG\r\n\x1a\n"
    worker = await console.get("/console/sw.js")
    assert worker.status == 200
    assert worker.content_type == "text/javascript"
    assert "notificationclick" in await worker.text()
    # no session: the login page links the manifest too (installable from there)
    login_page = await console.get("/console/login")
    assert 'rel="manifest" href="/console/manifest.webmanifest"' in await login_page.text()
    # without WEBPUSH_* the device page says push is off, and subscribing is refused
    csrf = await login(console, "responder")
    page = html.unescape(await (await console.get("/console/device")).text())
    assert "Web Push is off on this bridge" in page
    response = await console.post("/console/push/subscribe", data={"csrf": csrf})
    assert response.status == 409


async def test_subscribe_page_acknowledge_by_push(pushing):
    client, push = pushing.client, pushing.push
    csrf = await login(client, "responder")
    page = html.unescape(await (await client.get("/console/device")).text())
    assert f'data-key="{KEYS.public_key}"' in page
    assert "Paged as Alice Example" in page
    assert "No browser of yours gets push notifications." in page

    browser = push.subscribe(application_server_key=KEYS.public_key)
    form = {
        "csrf": csrf,
        "endpoint": browser["endpoint"],
        "p256dh": browser["keys"]["p256dh"],
        "auth": browser["keys"]["auth"],
    }
    refused = {
        "endpoint": "http://push.example/x",  # not https
        "p256dh": "AAAA",
        "auth": "not base64!",
    }
    for field, value in refused.items():
        response = await client.post("/console/push/subscribe", data={**form, field: value})
        assert response.status == 400, field
        assert field in html.unescape(await response.text())
    response = await client.post("/console/push/subscribe", data={**form, "csrf": "forged"})
    assert response.status == 403
    assert await pushing.subscriptions.for_user("responder") == []
    response = await client.post("/console/push/subscribe", data=form, allow_redirects=False)
    assert response.status == 303
    (stored,) = await pushing.subscriptions.for_user("responder")
    assert stored.endpoint == browser["endpoint"]

    # a critical incident pages Alice by push: her console user's browser gets it
    await fire(client, name="PaymentsDown", severity="critical", fingerprint="p1")
    ident = (await client.bridge.storage.query("SELECT id FROM incidents"))[0]["id"]
    pushed = await page_by_push(pushing)
    assert pushed["incident"] == ident
    assert pushed["url"] == f"/console/incidents/{ident}"
    assert pushed["title"].startswith(f"CRITICAL #{ident}: ")
    assert "You are on call for this incident (step 1 of 1)." in pushed["body"]
    token = pushed["token"]
    assert token

    # Acknowledge from the notification: no session cookie, no CSRF token, only the token
    client.session.cookie_jar.clear()
    forged = await client.post("/console/push/acknowledge", data={"token": token[:-2] + "xx"})
    assert forged.status == 404
    answer = await client.post("/console/push/acknowledge", data={"token": token})
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["status"] == "acknowledged"
    assert (await answer.json())["changed"] is True
    rows = await client.bridge.storage.query("SELECT status FROM incidents")
    assert rows[0]["status"] == "acknowledged"
    events = await client.bridge.storage.query(
        "SELECT detail::text AS d FROM incident_events WHERE kind = 'acknowledged'"
    )
    detail = json.loads(events[0]["d"])
    assert (detail["by"], detail["via"]) == ("alice", "push")
    again = await client.post("/console/push/acknowledge", data={"token": token})
    assert again.status == 409  # single use

    # the device page lists the browser; removing it stops the pages
    csrf = await login(client, "responder")
    page = html.unescape(await (await client.get("/console/device")).text())
    assert "delivered" in page
    response = await client.post(
        "/console/push/unsubscribe", data={"csrf": csrf, "id": str(stored.id)}
    )
    assert response.status == 200
    assert await pushing.subscriptions.for_user("responder") == []
    # another user cannot remove someone else's browser
    await pushing.subscriptions.add(
        "responder", browser["endpoint"], form["p256dh"], form["auth"], "", client.clock()
    )
    client.session.cookie_jar.clear()
    other = await login(client, "admin")
    (kept,) = await pushing.subscriptions.for_user("responder")
    await client.post("/console/push/unsubscribe", data={"csrf": other, "id": str(kept.id)})
    assert len(await pushing.subscriptions.for_user("responder")) == 1
    assert csrf_of(await (await client.get("/console/device")).text())
