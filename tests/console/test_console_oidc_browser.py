"""Signing in with the OpenID provider in a real headless Chromium: the login page (desktop and
phone) offers "Sign in with ..." beside the password form; clicking it walks through the local
provider (``tests/fakes/oidc.py``, auto-consent) and back to the page first asked for, as the
mapped role limited to the claimed organization; a person the role map does not admit gets a
page saying so.

Screenshots go to ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make screenshots``: docs/console/) or
the test's temporary directory."""

from __future__ import annotations

from playwright.async_api import expect

from tests.console.browser_support import chromium, new_screen
from tests.console.support import alert_path, outage


async def test_sign_in_with_the_provider_in_chromium(oidc_console, oidc_provider, shots):
    console, provider = oidc_console, oidc_provider
    await outage(console)
    base = str(console.make_url("")).rstrip("/")
    mine, theirs = await alert_path(console, "pay0"), await alert_path(console, "pay1")
    async with chromium() as browser:
        phone = await new_screen(browser, "phone")
        page = await phone.new_page()
        await page.goto(f"{base}/console/login")
        await expect(page.get_by_role("link", name="Sign in with Local provider")).to_be_visible()
        await page.screenshot(path=str(shots / "oidc-phone-login.png"), full_page=True)
        await phone.close()

        desktop = await new_screen(browser, "desktop")
        page = await desktop.new_page()
        await page.goto(f"{base}{mine}")  # not signed in: the login page, then back here
        await expect(page.get_by_label("Password")).to_be_visible()
        await page.screenshot(path=str(shots / "oidc-desktop-login.png"), full_page=True)
        await page.get_by_role("link", name="Sign in with Local provider").click()
        await expect(page.locator("h1")).to_contain_text("PaymentFailureRatioHigh")
        assert page.url == f"{base}{mine}"
        await expect(page.locator(".who")).to_contain_text("ada@example.org")
        await page.screenshot(path=str(shots / "oidc-desktop-signed-in.png"), full_page=True)
        assert any(r.path == "/token" for r in provider.requests)
        # the claimed organization only: another's alert is not there, settings are refused
        response = await page.goto(f"{base}{theirs}")
        assert response is not None
        assert response.status == 404
        response = await page.goto(f"{base}/console/settings")
        assert response is not None
        assert response.status == 403
        await desktop.close()

        # the provider no longer puts the person in a mapped group
        provider.user |= {"groups": ["marketing"]}
        desktop = await new_screen(browser, "desktop")
        page = await desktop.new_page()
        await page.goto(f"{base}/console/login")
        await page.get_by_role("link", name="Sign in with Local provider").click()
        await expect(page.locator(".problem")).to_contain_text("has no console role")
        await page.screenshot(path=str(shots / "oidc-desktop-refused.png"), full_page=True)
        await desktop.close()
