"""Signing in with the OpenID provider in a real headless Chromium: the login page (desktop and
phone) offers "Sign in with ..." beside the password form; clicking it walks through the local
provider (``tests/fakes/oidc.py``, auto-consent) and back to the page first asked for, as the
mapped role limited to the claimed organization (its settings only; a viewer reads the
recipients masked); a person the role map does not admit gets a
page saying so.

Screenshots go to ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make screenshots``: docs/console/) or
the test's temporary directory."""

from __future__ import annotations

from playwright.async_api import expect

from bridge.storage.console import AuditEntry
from bridge.storage.types import PreferenceRow
from tests.bridge.support import T0
from tests.console.browser_support import chromium, new_screen
from tests.console.support import alert_path, outage


async def test_sign_in_with_the_provider_in_chromium(oidc_console, oidc_provider, shots):
    console, provider = oidc_console, oidc_provider
    await outage(console)
    recipients = {"email": ["alice@example.org"], "sms": ["+15550000001"]}
    row = PreferenceRow("org-a", None, recipients, "low", None, None, "UTC")
    await console.bridge.storage.console().save_preference(
        row, T0, AuditEntry(T0, "admin", "changed preferences")
    )
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
        # the claimed organization only: another's alert is not there, nor its settings
        response = await page.goto(f"{base}{theirs}")
        assert response is not None
        assert response.status == 403  # "outside your organizations" (was a 404 before)
        response = await page.goto(f"{base}/console/settings")
        assert response is not None
        assert response.status == 200
        await expect(page.get_by_role("link", name="org-a", exact=True)).to_be_visible()
        await expect(page.get_by_role("link", name="org-b", exact=True)).to_have_count(0)
        response = await page.goto(f"{base}/console/settings?org=org-b")
        assert response is not None
        assert response.status == 403
        await desktop.close()

        # a viewer of org-a reads its settings, the recipients masked
        provider.user |= {"groups": ["watchers"]}
        for size in ("desktop", "phone"):
            screen = await new_screen(browser, size)
            page = await screen.new_page()
            await page.goto(f"{base}/console/settings?org=org-a")
            await page.get_by_role("link", name="Sign in with Local provider").click()
            await expect(page.locator("h1")).to_have_text("org-a")
            await expect(page.get_by_label("SMS recipients (E.164)")).to_have_value("+1•••••0001")
            await expect(page.get_by_label("E-mail recipients")).to_have_value("a•••@example.org")
            await expect(page.get_by_label("E-mail recipients")).to_be_disabled()
            shot = shots / f"settings-viewer-{size}.png"
            await page.screenshot(path=str(shot), full_page=True)
            await screen.close()

        # the provider no longer puts the person in a mapped group
        provider.user |= {"groups": ["marketing"]}
        desktop = await new_screen(browser, "desktop")
        page = await desktop.new_page()
        await page.goto(f"{base}/console/login")
        await page.get_by_role("link", name="Sign in with Local provider").click()
        await expect(page.locator(".problem")).to_contain_text("has no console role")
        await page.screenshot(path=str(shots / "oidc-desktop-refused.png"), full_page=True)
        await desktop.close()
