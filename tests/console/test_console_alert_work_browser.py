"""Alert work in a real headless Chromium (issue 21), against the bridge process's app on
PostgreSQL, on a desktop and a phone-sized screen: acknowledge for an hour, unacknowledge,
assign to yourself, a note, snooze (off the Now page, back when it ends on the bridge's clock),
and an alert's channels with why each was not delivered.

Screenshots go to ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make screenshots``: docs/console/) or
the test's temporary directory."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.console.browser_support import chromium, log_in, new_screen
from tests.console.support import alert_path, incident_ids, outage


async def shot(page: Page, shots, name: str) -> None:
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


async def test_alert_work_in_chromium(console, shots):
    await outage(console)
    ids = await incident_ids(console)
    base = str(console.make_url("")).rstrip("/")
    async with chromium() as browser:
        for name, incident, fingerprint in (
            ("desktop", ids["pay0"], "pay2"),
            ("phone", ids["wid1"], "wid1"),
        ):
            context = await new_screen(browser, name)
            page = await context.new_page()
            await log_in(page, base, "responder")
            await page.goto(f"{base}/console/incidents/{incident}")
            state = page.locator("h1 .chip.state")

            # acknowledge for an hour, then take it back
            await page.get_by_label("acknowledge for how long").select_option("1h")
            await page.get_by_role("button", name=re.compile("Acknowledge incident")).click()
            await expect(state).to_have_text("acknowledged")
            await expect(page.locator(".work-line")).to_contain_text("acknowledged until")
            await shot(page, shots, f"work-{name}-acknowledged-1h")
            await page.get_by_role("button", name="Unacknowledge").click()
            await expect(page.locator(".notice")).to_contain_text("unacknowledged")
            await expect(state).to_have_text("firing")

            # assign to me, a note (escaped), snooze
            await page.get_by_role("button", name="Assign to me").click()
            await expect(page.locator(".work-line")).to_contain_text("assigned to responder")
            await page.get_by_label("timeline note").fill("<i>pooler</i> restarted, watching")
            await page.get_by_role("button", name="Add note").click()
            note = page.locator("tr.ev-note").last
            await expect(note).to_contain_text("<i>pooler</i> restarted, watching")
            # the help says how a snooze differs from a silence
            await expect(page.locator("#snooze-help")).to_contain_text("A silence is Alertmanager")
            await page.get_by_label("snooze for how long").select_option("30m")
            await page.get_by_role("button", name="Snooze", exact=True).click()
            await expect(page.locator(".work-line")).to_contain_text("snoozed until")
            await shot(page, shots, f"work-{name}-incident")

            # off the Now page until the snooze ends; the assignee on its row
            await page.goto(f"{base}/console/")
            await expect(page.locator(f"#incident-{incident}")).to_have_count(0)
            await expect(page.get_by_role("link", name="1 snoozed")).to_be_visible()
            await shot(page, shots, f"work-{name}-now-snoozed")
            console.clock.advance(30 * 60)
            assert await console.bridge.escalator.run_once() == 1
            await page.goto(f"{base}/console/")
            row = page.locator(f"#incident-{incident} tr.head")
            await expect(row).to_be_visible()
            await expect(row.locator(".chip.assignee")).to_have_text("responder")
            await shot(page, shots, f"work-{name}-now")

            # an alert's channels: delivered, or why not
            await page.goto(f"{base}{await alert_path(console, fingerprint)}")
            channels = page.locator("table.channels")
            await expect(channels).to_be_visible()
            await channels.scroll_into_view_if_needed()
            await shot(page, shots, f"work-{name}-alert-channels")
            await context.close()
