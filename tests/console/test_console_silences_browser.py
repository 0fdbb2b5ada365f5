"""Silences in a real headless Chromium, over two real Alertmanagers, on a desktop and a
phone-sized screen: open a firing alert, open the silence form from it (severity and
widget_id unticked, a label more dropped by hand), preview the firing alerts it would match,
create it (in both Alertmanagers), find it on the Silences page, edit it, expire it.

Screenshots go to ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make screenshots``: docs/console/) or
the test's temporary directory."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import expect

from tests import plain_http
from tests.console.browser_support import chromium, log_in, new_screen
from tests.console.silence_support import console_over, fire_everywhere, held, new_org
from tests.console.support import alert_path


async def test_silence_an_alert_edit_and_expire_it_in_chromium(
    db_url, aiohttp_client, console_alertmanager, second_alertmanager, shots
):
    ams = (console_alertmanager, second_alertmanager)
    console = await console_over(db_url, aiohttp_client, *ams)
    base = str(console.make_url("")).rstrip("/")
    async with chromium() as browser:
        for name in ("desktop", "phone"):
            org = new_org()
            prints = (f"{name}-h", f"{name}-c", f"{name}-x")
            await fire_everywhere(console, ams, fingerprint=prints[0], organization_id=org,
                                  severity="high", labels={"widget_id": "checkout"})  # fmt: skip
            await fire_everywhere(console, ams, fingerprint=prints[1], organization_id=org,
                                  severity="critical", labels={"widget_id": "donate"})  # fmt: skip
            await fire_everywhere(console, ams, fingerprint=prints[2], organization_id=new_org())
            context = await new_screen(browser, name)
            page = await context.new_page()
            await log_in(page, base, "responder")

            # the alert, and the silence form from it
            await page.goto(base + await alert_path(console, prints[0]))
            await page.get_by_role("link", name="Silence with chosen labels…").click()
            await expect(page.locator("h1")).to_have_text("New silence")
            for label, ticked in (
                ("alertname", True),
                ("category", True),
                ("organization_id", True),
                ("severity", False),
                ("widget_id", False),
            ):
                box = page.get_by_label(f"use {label}", exact=True)
                await (expect(box).to_be_checked() if ticked else expect(box).not_to_be_checked())
            await page.get_by_label("use category", exact=True).uncheck()
            await page.get_by_role("button", name="Preview matches").click()
            preview = page.locator("#preview")
            await expect(preview.locator("h2")).to_have_text("Would silence 2 firing alerts")
            await expect(preview.locator("tbody tr")).to_have_count(2)
            await expect(page.get_by_label("use category", exact=True)).not_to_be_checked()
            await page.get_by_label("silence comment").fill(f"checkout deploy ({name})")
            await page.screenshot(path=str(shots / f"silences-{name}-form.png"), full_page=True)

            # created in both Alertmanagers, listed with what it silences
            await page.get_by_role("button", name="Create silence").click()
            await expect(page.locator(".notice")).to_contain_text("created in")
            ident = parse_qs(urlsplit(page.url).query)["id"][0]
            row = page.locator(f"#silence-{ident}")
            await expect(row).to_contain_text("2 firing alerts")
            await expect(row).to_contain_text(f"checkout deploy ({name})")
            await expect(row.locator("td.state")).to_have_text("active")
            assert [len(held(url, org)) for url in ams] == [1, 1]
            matchers = {m["name"] for m in held(console_alertmanager, org)[0]["matchers"]}
            assert matchers == {"alertname", "organization_id"}
            await page.screenshot(path=str(shots / f"silences-{name}-list.png"), full_page=True)

            # edit: a longer silence, another comment: the same silence, updated in place
            await row.get_by_role("link", name="Edit").click()
            await expect(page.locator("h1")).to_contain_text("Edit silence")
            await page.get_by_label("ends at").fill("")
            await page.get_by_label("silence duration").select_option("4h")
            await page.get_by_label("silence comment").fill(f"deploy takes longer ({name})")
            await page.screenshot(path=str(shots / f"silences-{name}-edit.png"), full_page=True)
            await page.get_by_role("button", name="Save silence").click()
            await expect(page.locator(".notice")).to_contain_text(f"silence {ident} saved")
            await expect(row).to_contain_text(f"deploy takes longer ({name})")
            await expect(row.locator(".left")).to_have_text(re.compile(r"^(3h59m|4h00m) left$"))

            # expire
            await row.get_by_role("button", name="Expire").click()
            await expect(page.locator(".notice")).to_contain_text(f"silence {ident} expired")
            await expect(row.locator("td.state")).to_have_text("expired")
            await expect(row.get_by_role("button", name="Expire")).to_have_count(0)
            state = plain_http.get(f"{console_alertmanager}/api/v2/silence/{ident}").json()
            assert state["status"]["state"] == "expired"
            await page.screenshot(path=str(shots / f"silences-{name}-expired.png"), full_page=True)
            await context.close()
