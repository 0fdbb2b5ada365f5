"""Triage on the Now page in a real headless Chromium (Debian's, through Playwright's async API
on the test's own event loop), against the bridge process's app on PostgreSQL, on a desktop
and a phone-sized screen: filter (the `/` key, the organization link), collapse by alert name
(`c`, `o`), select (`x`, the checkboxes), bulk acknowledge (`a`, the button), the `?` overlay,
and a reload keeping the cursor and the open group (their rows fetched when opened, as on a
page of hundreds of alerts).

Screenshots go to ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make screenshots``: docs/console/) or
the test's temporary directory."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.console.browser_support import chromium, log_in, new_screen
from tests.console.support import outage

FOCUS = re.compile(r"\bfocus\b")


async def ready(page: Page) -> None:
    """The script has run (the keys work)."""
    await expect(page.locator("html[data-script=ready]")).to_have_count(1)


async def focused_key(page: Page) -> str:
    return await page.locator("tr.focus").get_attribute("data-key") or ""


async def test_triage_in_chromium_filter_collapse_select_acknowledge_overlay_reload(console, shots):
    await outage(console)
    storage = console.bridge.storage
    base = str(console.make_url("")).rstrip("/")
    async with chromium() as browser:
        # -- desktop: the keyboard all the way ------------------------------------------------
        context = await new_screen(browser, "desktop")
        page = await context.new_page()
        await log_in(page, base, "responder")
        await ready(page)
        summary = page.locator(".summary-line")
        await expect(summary).to_contain_text("critical 1")
        await expect(summary).to_contain_text("low 0")
        await page.screenshot(path=str(shots / "triage-desktop-now.png"), full_page=True)

        # filter: `/` focuses the bar, Enter applies (kept in the URL)
        await page.keyboard.press("/")
        await expect(page.locator("#filter-q")).to_be_focused()
        await page.keyboard.type('category=~"payment|system"')
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(re.compile(r"q=category%3D%7E%22payment%7Csystem%22"))
        await expect(page.locator("tbody.incident")).to_have_count(1)  # not the widget's
        await expect(page.locator("section.group")).to_contain_text("payment")  # LegacyAlert

        # collapse by name (c), the cursor to PaymentFailureRatioHigh (j j), open it (o)
        await ready(page)
        await page.keyboard.press("c")
        await expect(page).to_have_url(re.compile(r"group=name"))
        await ready(page)
        heads = page.locator("tbody.incident tr.head")
        await expect(heads).to_have_count(3)
        await expect(heads.nth(0)).to_contain_text("DatabaseErrorsHigh")
        await page.keyboard.press("j")
        await page.keyboard.press("j")
        group = page.locator('tbody[data-key="g:PaymentFailureRatioHigh"]')
        await expect(group.locator("tr.head")).to_have_class(FOCUS)
        await expect(group.locator("tr.head")).to_contain_text("high 3")
        await page.keyboard.press("o")
        members = group.locator("tr.member")
        await expect(members).to_have_count(3)
        await expect(members.first).to_be_visible()

        # select: x on the group takes its three alerts, x on the first of them drops it
        await page.keyboard.press("x")
        await expect(page.locator("[data-selected]")).to_contain_text("3 selected")
        await page.keyboard.press("j")
        await expect(members.first).to_have_class(FOCUS)
        await page.keyboard.press("x")
        await expect(page.locator("[data-selected]")).to_contain_text("2 selected")
        await expect(members.nth(1)).to_have_class(re.compile(r"\bpicked\b"))
        await page.screenshot(path=str(shots / "triage-desktop-selected.png"), full_page=True)

        # bulk acknowledge (a): back on the same view, the two hidden and counted
        await page.keyboard.press("a")
        await expect(page.locator(".notice")).to_contain_text("acknowledged: 2 of 2 selected")
        await expect(page).to_have_url(re.compile(r"group=name"))
        await expect(page.locator(".hidden-count")).to_have_text("2 hidden")
        await ready(page)
        acked = await storage.query("SELECT fingerprint FROM alert_acknowledgements ORDER BY 1")
        assert [a["fingerprint"] for a in acked] == ["pay1", "pay2"]
        # the group stayed open through the reload, with the alert still to do
        await expect(group.locator("tr.member")).to_have_count(1)
        await expect(group.locator("tr.member")).to_be_visible()
        await expect(page.locator("[data-selected]")).to_contain_text("none")
        await page.screenshot(path=str(shots / "triage-desktop-acknowledged.png"), full_page=True)

        # the ? overlay lists every key; Escape closes it
        await page.keyboard.press("?")
        help_box = page.locator("#keys-help")
        await expect(help_box).to_be_visible()
        for key in ("x", "a", "s", "h", "c", "/", "?"):
            await expect(help_box.locator("kbd", has_text=key).first).to_be_visible()
        await page.screenshot(path=str(shots / "triage-desktop-keys.png"))
        await page.keyboard.press("Escape")
        await expect(help_box).to_be_hidden()

        # the cursor survives a reload (and h shows the acknowledged again)
        await page.keyboard.press("j")
        await page.keyboard.press("j")
        key = await focused_key(page)
        assert key.startswith("a:payment_alerts:"), key
        await page.reload()
        await ready(page)
        await expect(page.locator(f'tr[data-key="{key}"]')).to_have_class(FOCUS)
        await page.keyboard.press("h")
        await expect(page).to_have_url(re.compile(r"all=1"))
        await expect(group.locator("tr.member")).to_have_count(3)
        await expect(page.locator(f'tr[data-key="{key}"]')).to_have_class(FOCUS)
        await context.close()

        # -- phone: the organization link, the buttons ----------------------------------------
        context = await new_screen(browser, "phone")
        page = await context.new_page()
        await log_in(page, base, "admin")
        await ready(page)
        await page.screenshot(path=str(shots / "triage-phone-now.png"), full_page=True)
        # filtering to one organization is one tap
        await page.locator("tbody.incident a.org", has_text="org-w").first.tap()
        await expect(page).to_have_url(re.compile(r"q=organization_id%3D%22org-w%22"))
        await expect(page.locator("tbody.incident")).to_have_count(1)
        await page.get_by_role("link", name=re.compile("Collapse by alert name")).tap()
        await expect(page).to_have_url(re.compile(r"group=name"))
        await ready(page)  # a box ticked before the script runs is unticked by its restore
        widget = page.locator('tbody[data-key="g:WidgetLoadErrorRatioHigh"]')
        await expect(widget).to_be_visible()
        await widget.locator("input.pick-group").check()
        await expect(page.locator("[data-selected]")).to_contain_text("1 selected")
        await page.screenshot(path=str(shots / "triage-phone-selected.png"), full_page=True)
        await page.get_by_role("button", name=re.compile("Acknowledge")).tap()
        await expect(page.locator(".notice")).to_contain_text("acknowledged: 1 of 1 selected")
        await expect(page.locator(".empty")).to_contain_text("Nothing matches the filter")
        await page.screenshot(path=str(shots / "triage-phone-acknowledged.png"), full_page=True)
        await page.keyboard.press("?")
        await expect(page.locator("#keys-help")).to_be_visible()
        await page.screenshot(path=str(shots / "triage-phone-keys.png"))
        await page.keyboard.press("?")
        await page.goto(f"{base}/console/")
        await ready(page)
        await page.keyboard.press("j")
        key = await focused_key(page)
        await page.reload()
        await expect(page.locator(f'tr[data-key="{key}"]')).to_have_class(FOCUS)
        await context.close()
