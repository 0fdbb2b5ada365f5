"""The on-call page in a real headless Chromium (as test_console_incidents_browser.py): who is
on call, the week's calendar across Berlin's DST change, taking a shift from the calendar (the
cover form prefilled from the block), the override shown on the calendar; and an incident's
escalation on its page; on a desktop and a phone-sized screen.

Screenshots go to ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make screenshots``: docs/console/) or
the test's temporary directory."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.console.browser_support import chromium, log_in, new_screen
from tests.console.oncall_support import NOW
from tests.console.support import fire


async def test_the_oncall_page_and_taking_a_shift_in_chromium(oncall_console, shots):
    await fire(
        oncall_console,
        name="DatabaseErrorsHigh",
        fingerprint="db1",
        category="system",
        organization_id=None,
        severity="critical",
        starts_at=NOW,
    )
    await oncall_console.bridge.escalator.run_once()
    ident = (await oncall_console.bridge.storage.query("SELECT id FROM incidents"))[0]["id"]
    base = str(oncall_console.make_url("")).rstrip("/")
    async with chromium() as browser:
        for name in ("desktop", "phone"):
            context = await new_screen(browser, name)
            page = await context.new_page()
            await log_in(page, base, "responder")
            await page.get_by_role("link", name=re.compile("On call")).click()
            await expect(page.locator("#now-primary")).to_contain_text("Alice Example")
            await expect(page.locator("#week-daily .cal-day.today")).to_have_count(1)
            sunday = page.locator('#week-daily .cal-day[data-day="2026-10-25"]')
            await expect(sunday).to_contain_text("(25h)")
            await page.screenshot(path=str(shots / f"oncall-{name}.png"), full_page=True)
            if name == "phone":
                # scrolled to today, the schedule's name still in view
                scroller = page.locator(".calendar-scroll")
                assert await scroller.evaluate("e => e.scrollLeft") > 0
                await expect(page.locator("#week-daily .cal-name")).to_be_in_viewport()
                await expect(page.locator("#week-daily .shift.override")).to_have_count(1)
            if name == "desktop":
                # take Saturday's daily shift (Alice's, 25 hours) from the calendar
                block = page.locator('#week-daily a.shift[data-start="2026-10-24T07:00:00+00:00"]')
                await block.click()
                form = page.locator("#override")
                await expect(form.locator('[name="start"]')).to_have_value("2026-10-24T09:00")
                await expect(form.locator('[name="end"]')).to_have_value("2026-10-25T09:00")
                await form.locator('[name="person"]').select_option("bob")
                await form.locator('[name="reason"]').fill("Alice is at a wedding")
                await form.get_by_role("button", name="Save override").click()
                await expect(page.locator(".notice")).to_contain_text("saved")
                taken = page.locator('#week-daily .shift.override[data-person="bob"]')
                await expect(taken).to_have_count(1)
                await expect(taken).to_contain_text("covering Alice Example")
                await page.screenshot(
                    path=str(shots / f"oncall-{name}-override.png"), full_page=True
                )
            await page.goto(f"{base}/console/incidents/{ident}")
            await expect(page.locator("#escalation")).to_contain_text("step 2 of 2 due")
            await page.screenshot(path=str(shots / f"oncall-{name}-incident.png"), full_page=True)
            await context.close()
