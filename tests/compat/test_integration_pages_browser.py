"""The Integrations page in headless Chromium: a merchant with a payout address makes an EPay /
Epusdt credential and copies its key. axe-core finds nothing; both pages are captured at
1280x800 and 390x844 (``dashboard-integrations*.png`` in docs/screenshots/ with
STABLEGATE_SAVE_SCREENSHOTS=1)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from tests.admin.test_console_browser import LiveConsole
from tests.cashier.browser_support import DESKTOP, browser, chromium
from tests.compat.compat_browser_support import OWNER, seeded_settings
from tests.dashboard.dashboard_support import PASSWORD
from tests.support import LiveServer

from stablegate.api.app import create_app

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium"]  # fixtures used by the tests below


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveConsole]:
    folder = tmp_path_factory.mktemp("integrations")
    settings = await seeded_settings(folder)
    shots = folder / "screenshots"
    shots.mkdir()
    with LiveServer(create_app(settings, migrate=False)) as server:
        yield LiveConsole(server.url, shots, prefix="dashboard")


async def test_a_merchant_makes_a_plugin_credential(browser: Browser, live: LiveConsole) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(viewport=DESKTOP, locale="en-US")  # type: ignore[arg-type]
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        await page.goto(f"{live.url}/dashboard/login")
        await page.get_by_label("Email address").fill(OWNER)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await page.get_by_role("link", name="Integrations").click()
        await expect(page.get_by_text("None yet.")).to_be_visible()
        await live.capture(page, "integrations")
        await page.get_by_label("Currency the shop prices in").select_option("CNY")
        await page.get_by_role("button", name="Create credential").click()
        await expect(page.locator("#pid")).to_have_text(re.compile(r"^\d{10}$"))
        key = (await page.locator("#epay-key").inner_text()).strip()
        await page.locator('button[data-copy="epay-key"]').click()
        assert await page.evaluate("navigator.clipboard.readText()") == key
        await live.capture(page, "integration-created")
        await page.get_by_role("link", name="Back to Integrations").click()
        await expect(page.locator("#credentials-table tbody tr")).to_have_count(1)
        assert key not in await page.content()
        assert errors == []
    finally:
        await context.close()
