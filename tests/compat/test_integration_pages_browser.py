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
from cryptography.fernet import Fernet
from tests.admin.test_console_browser import LiveConsole
from tests.cashier.browser_support import DESKTOP, browser, chromium
from tests.chain_files import write_chains_file
from tests.dashboard.dashboard_support import PASSWORD
from tests.support import PAYOUT, TEST_USDT, LiveServer

from stablegate.api.app import create_app
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.dashboard.accounts import add_owner
from stablegate.dashboard.passwords import hash_password
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import add_merchant
from stablegate.migrations import upgrade
from stablegate.models import PayoutAddress
from stablegate.secret_box import load_secret_box

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium"]  # fixtures used by the tests below

OWNER = "owner@cards.example"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveConsole]:
    folder = tmp_path_factory.mktemp("integrations")
    settings = Settings(
        data_dir=folder / "data",
        database_url=f"sqlite+aiosqlite:///{folder / 'gateway.db'}",
        chains_file=write_chains_file(
            folder / "chains.toml", name="Dev chain", tokens=[("USDT", TEST_USDT, 6)]
        ),
        secret_key=Fernet.generate_key().decode(),
        public_url="https://pay.example.com",
        signup_policy="approval",
        _env_file=None,  # type: ignore[call-arg]
    )
    engine = make_engine(settings.effective_database_url)
    await upgrade(engine)
    clock = SystemClock()
    async with session_scope(make_sessionmaker(engine)) as session:
        merchant_id, _ = await add_merchant(
            session, load_secret_box(settings), clock, name="Card Shop"
        )
        await add_owner(
            session, clock, merchant_id, OWNER, await hash_password(PASSWORD), verified=True
        )
        session.add(
            PayoutAddress(
                merchant_id=merchant_id,
                chain_id=31337,
                address=PAYOUT,
                updated_at_ms=clock.now_ms(),
            )
        )
    await engine.dispose()
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
