"""The phone app in a real headless Chromium: the service worker registered by the console, an
on-call page sent by the bridge's ``webpush`` channel to the fake push service (which checks
its VAPID JWT and decrypts it), that page handed to the service worker with DevTools'
``ServiceWorker.deliverPushMessage`` (Chromium here has no push service of its own), the
notification it shows with its Acknowledge action, and that action acknowledging the incident.

Chromium cannot click its own notifications headless, so the test runs, inside the service
worker (DevTools evaluation), the function its ``notificationclick`` listener calls with the
event's notification and action: ``handleClick(notification, "acknowledge")``.

Also: the Now page's desktop notification for a new critical incident on its live refresh
(the page's clock driven by Playwright), and dark mode (the toggle, kept across a reload, and
``prefers-color-scheme`` on a phone); screenshots desktop and phone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.console.browser_support import chromium, log_in, new_screen
from tests.console.push_support import KEYS, page_by_push, push_console
from tests.console.support import fire

NOTIFICATIONS = """() => navigator.serviceWorker.ready
  .then(r => r.getNotifications())
  .then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag,
                            actions: n.actions.map(a => a.action)})))"""


@pytest.fixture
async def pushing(
    db_url, aiohttp_client, tmp_path, console_alertmanager, fake_push, client_ssl_context
):
    async with push_console(
        db_url, aiohttp_client, tmp_path, console_alertmanager, fake_push, client_ssl_context
    ) as console:
        yield console


async def _until(probe, what: str, timeout: float = 15.0) -> Any:
    """Poll ``probe`` (async, returns a value or None) until it gives something."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _registration(context: BrowserContext, page: Page, base: str) -> tuple[Any, str]:
    """A DevTools session and the console's service worker registration id."""
    cdp = await context.new_cdp_session(page)
    found: dict[str, str] = {}
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: found.update({r["scopeURL"]: r["registrationId"] for r in e["registrations"]}),
    )
    await cdp.send("ServiceWorker.enable")
    scope = f"{base}/console/"
    registration = await _until(lambda: asyncio.sleep(0, found.get(scope)), "the registration")
    return cdp, registration


async def _notifications(page: Page) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = await page.evaluate(NOTIFICATIONS)
    return shown


async def test_a_push_page_and_its_acknowledge_in_chromium(pushing, shots):
    client, push = pushing.client, pushing.push
    base = str(client.make_url("")).rstrip("/")
    browser_keys = push.subscribe(application_server_key=KEYS.public_key)
    await pushing.subscriptions.add(
        "responder",
        browser_keys["endpoint"],
        browser_keys["keys"]["p256dh"],
        browser_keys["keys"]["auth"],
        "Chromium (test)",
        client.clock(),
    )
    async with chromium() as browser:
        context = await new_screen(browser, "desktop")
        await context.grant_permissions(["notifications"], origin=base)
        page = await context.new_page()
        await log_in(page, base, "responder")
        await page.goto(f"{base}/console/device")
        await page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
        await expect(page.locator("[data-push-state]")).to_have_text("Off for this browser.")
        await expect(page.locator("tr[data-endpoint]")).to_have_count(1)
        await page.screenshot(path=str(shots / "push-device-desktop.png"), full_page=True)
        # headless Chromium has no push service of its own: subscribing fails, and says so
        await page.get_by_role("button", name="Turn on notifications").click()
        await expect(page.locator("[data-push-state]")).to_contain_text("Could not turn on: ")
        assert len(await pushing.subscriptions.for_user("responder")) == 1

        # the page the bridge sent, as the push service decrypted it, into the service worker
        await fire(client, name="PaymentsDown", severity="critical", fingerprint="p1")
        ident = (await client.bridge.storage.query("SELECT id FROM incidents"))[0]["id"]
        pushed = await page_by_push(pushing)
        cdp, registration = await _registration(context, page, base)
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": base, "registrationId": registration, "data": json.dumps(pushed)},
        )
        shown = await _until(lambda: _notifications(page), "the notification")
        assert shown == [
            {
                "title": f"CRITICAL #{ident}: PaymentsDown (org-1)",
                "body": pushed["body"],
                "tag": f"incident-{ident}",
                "actions": ["acknowledge"],
            }
        ]

        # its Acknowledge: what notificationclick runs, run in the service worker
        (worker,) = context.service_workers
        await worker.evaluate(
            """() => self.registration.getNotifications()
                 .then(ns => handleClick(ns[0], "acknowledge"))"""
        )

        async def acknowledged() -> bool:
            rows = await client.bridge.storage.query("SELECT status FROM incidents")
            return rows[0]["status"] == "acknowledged"

        await _until(acknowledged, "the incident acknowledged")
        done = await _until(lambda: _notifications(page), "the answer in place of the notification")
        assert [(n["title"], n["actions"]) for n in done] == [(f"Acknowledged #{ident}", [])]
        events = await client.bridge.storage.query(
            "SELECT detail->>'via' AS via FROM incident_events WHERE kind = 'acknowledged'"
        )
        assert [e["via"] for e in events] == ["push"]

        # desktop alerts: on, then a new critical incident on the Now page's live refresh
        await page.get_by_label("Notify me of new critical incidents").check()
        await page.get_by_label("Play a sound with them").check()
        await page.clock.install()
        await page.goto(f"{base}/console/")
        await fire(
            client,
            name="WidgetsDown",
            severity="critical",
            category="widget",
            organization_id="org-9",
            fingerprint="w1",
        )
        second = (await client.bridge.storage.query("SELECT max(id) AS id FROM incidents"))[0]["id"]
        assert second != ident
        await page.clock.run_for(11_000)
        await expect(page.locator(f"#incident-{second}")).to_have_count(1)

        async def announced() -> list[dict[str, Any]]:
            return [n for n in await _notifications(page) if n["tag"] == f"incident-{second}"]

        (alert,) = await _until(announced, "the desktop notification")
        assert alert["title"].startswith(f"CRITICAL #{second}: WidgetsDown")

        # dark mode: the header's toggle (auto → dark), kept across a reload
        await page.locator("[data-theme-toggle]").click()
        await page.reload()
        assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(18, 21, 25)"
        await page.screenshot(path=str(shots / "dark-desktop-now.png"), full_page=True)
        await page.goto(f"{base}/console/device")
        await expect(page.locator('input[name="theme"][value="dark"]')).to_be_checked()
        await page.screenshot(path=str(shots / "dark-desktop-device.png"), full_page=True)
        await context.close()

        # a phone whose system is dark: dark without a choice made
        phone = await new_screen(browser, "phone")
        page = await phone.new_page()
        await page.emulate_media(color_scheme="dark")
        await log_in(page, base, "responder")
        assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
        await page.screenshot(path=str(shots / "dark-phone-now.png"), full_page=True)
        await page.goto(f"{base}/console/device")
        await page.screenshot(path=str(shots / "dark-phone-device.png"), full_page=True)
        await page.locator('input[name="theme"][value="light"]').check()
        assert await page.evaluate("document.documentElement.dataset.theme") == "light"
        await phone.close()
