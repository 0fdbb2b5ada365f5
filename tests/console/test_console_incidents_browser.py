"""The incidents on the console in a real headless Chromium (Debian's, driven by Playwright's
async API on the test's own event loop), against the bridge process's app on PostgreSQL:
the keyboard on the Now page (j/k over incidents and their opened alerts, o to open and close
an incident, Enter), the live refresh keeping an opened incident open, acknowledging an
incident from its page, on a desktop and a phone-sized screen.

Screenshots go to ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make screenshots``: docs/console/) or
the test's temporary directory."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.console.browser_support import chromium, log_in, new_screen
from tests.console.support import incident_ids, outage


async def test_incidents_in_chromium_keyboard_and_acknowledge(console, shots):
    await outage(console)
    big = (await incident_ids(console))["pay0"]
    base = str(console.make_url("")).rstrip("/")
    async with chromium() as browser:
        for name in ("phone", "desktop"):
            context = await new_screen(browser, name)
            page = await context.new_page()
            await log_in(page, base, "responder")
            head = page.locator(f"#incident-{big} tr.head")
            members = page.locator(f"#incident-{big} tr.member")
            await expect(head).to_be_visible()
            await expect(members.first).to_be_hidden()
            await page.screenshot(path=str(shots / f"incidents-{name}-now.png"), full_page=True)

            # j focuses the first incident (the most severe), o opens it, j walks into
            # its alerts, o from an alert closes it again and focuses the incident
            await page.keyboard.press("j")
            await expect(head).to_have_class(re.compile(r"\bfocus\b"))
            await page.keyboard.press("o")
            await expect(members).to_have_count(4)
            for i in range(4):
                await expect(members.nth(i)).to_be_visible()
            await page.screenshot(
                path=str(shots / f"incidents-{name}-now-open.png"), full_page=True
            )
            await page.keyboard.press("j")
            await expect(members.first).to_have_class(re.compile(r"\bfocus\b"))
            await page.keyboard.press("o")
            await expect(members.first).to_be_hidden()
            await expect(head).to_have_class(re.compile(r"\bfocus\b"))
            await page.keyboard.press("o")
            await expect(members.first).to_be_visible()
            if name == "desktop":
                # the live refresh (every 10 s) keeps it open, and the focus
                async with page.expect_response(lambda r: "fragment=1" in r.url, timeout=30_000):
                    pass
                fresh = page.locator(f"#incident-{big} tr.member")
                await expect(fresh.first).to_be_visible()
                await expect(head).to_have_class(re.compile(r"\bfocus\b"))
            await page.keyboard.press("j")
            await page.keyboard.press("Enter")
            await expect(page.locator("h1")).to_contain_text("PaymentFailureRatioHigh")
            await expect(page.locator(".incident-link")).to_contain_text(f"incident #{big}")
            await page.screenshot(path=str(shots / f"incidents-{name}-alert.png"), full_page=True)
            await page.locator(".incident-link a").click()
            await expect(page.locator("h1")).to_contain_text("DatabaseErrorsHigh")
            await page.screenshot(
                path=str(shots / f"incidents-{name}-incident.png"), full_page=True
            )
            if name == "desktop":
                await page.get_by_placeholder("note (optional)").fill("failing over the db")
                await page.get_by_role("button", name=re.compile("Acknowledge incident")).click()
                await expect(page.locator(".notice")).to_contain_text("acknowledged with 4")
                await expect(page.locator(".ackline")).to_contain_text("failing over the db")
                await expect(page.locator("h1 .chip.state")).to_have_text("acknowledged")
                await page.screenshot(
                    path=str(shots / f"incidents-{name}-incident-acknowledged.png"),
                    full_page=True,
                )
            await context.close()
