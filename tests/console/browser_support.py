"""What the console's browser tests share: Debian's Chromium driven by Playwright's async API
on the test's own event loop, the two screen sizes, where screenshots go, and logging in.

Screenshots go to ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make screenshots``: docs/console/) or
the test's temporary directory (the ``shots`` fixture of ``tests/console/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.console.support import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """One headless Chromium for a test's screens."""
    assert Path(CHROMIUM).exists(), "chromium is not installed: `make debs` installs it"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_screen(browser: Browser, name: str) -> BrowserContext:
    """A context of the named screen size: ``desktop`` or ``phone`` (touch, mobile)."""
    phone = name == "phone"
    return await browser.new_context(
        viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone
    )


async def log_in(page: Page, base: str, user: str, password: str = PASSWORD) -> None:
    """Signs ``user`` in through the login form and waits for the navigation bar."""
    await page.goto(f"{base}/console/login")
    await page.get_by_label("User").fill(user)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("nav")).to_be_visible()
