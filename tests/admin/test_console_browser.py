"""The console in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright): an
operator made as the CLI makes one logs in, finds a pending merchant whose name is markup,
approves it, disables another with a reason and sees it in the audit log, reads the chains page
(an anvil node answering, an endpoint failing with its secret hidden) and the sweeps page,
switches the sign-up policy and starts two-factor set-up. axe-core finds nothing on any page.
Every page is captured at 1280x800 and 390x844 into the test's tmp dir, and into
docs/screenshots/ (``console-*.png``) with STABLEGATE_SAVE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from eth_account import Account
from tests.cashier.browser_support import DESKTOP, PHONE, REPO, axe_violations, browser, chromium
from tests.chain_files import write_chains_file
from tests.dashboard.dashboard_support import PASSWORD, MailSink
from tests.support import TEST_USDT, LiveServer

from stablegate.admin.accounts import create_operator
from stablegate.api.app import create_app
from stablegate.chain.anvil import AnvilNode
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.dashboard.accounts import add_owner
from stablegate.dashboard.passwords import hash_password
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import add_merchant, issue_api_key
from stablegate.migrations import upgrade
from stablegate.models.merchant import MerchantStatus
from stablegate.secret_box import load_secret_box

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium"]  # fixtures used by the tests below

OPERATOR = "ops@gateway.example"
MARKUP_NAME = '<b>Bold</b> & "Quoted" Shop'
SECRET_PATH = "k3y-in-the-path"


@dataclass
class LiveConsole:
    """A live gateway whose pages are captured as ``<prefix>-<name>-<size>.png``."""

    url: str
    shots: Path
    prefix: str = "console"

    async def capture(self, page: Page, name: str) -> None:
        """axe-core finds nothing; the page at 1280x800 and at 390x844."""
        assert await axe_violations(page) == [], name
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(size)  # type: ignore[arg-type]
            path = self.shots / f"{self.prefix}-{name}-{label}.png"
            await page.screenshot(path=str(path), full_page=True)
            if os.environ.get("STABLEGATE_SAVE_SCREENSHOTS") == "1":
                target = REPO / "docs" / "screenshots"
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / path.name)
        await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


async def _seed(settings: Settings) -> None:
    engine = make_engine(settings.effective_database_url)
    await upgrade(engine)
    clock, box = SystemClock(), load_secret_box(settings)
    password_hash = await hash_password(PASSWORD)
    async with session_scope(make_sessionmaker(engine)) as session:
        await create_operator(session, clock, OPERATOR, password_hash)
        cafe, _ = await add_merchant(session, box, clock, name="Corner Café")
        await add_owner(session, clock, cafe, "owner@cafe.example", password_hash, verified=True)
        await issue_api_key(session, box, clock, cafe, label="Shop backend")
        pending, _ = await add_merchant(
            session, box, clock, name=MARKUP_NAME, status=MerchantStatus.PENDING
        )
        await add_owner(session, clock, pending, "new@shop.example", password_hash, verified=True)
    await engine.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(
    tmp_path_factory: pytest.TempPathFactory, anvil: AnvilNode
) -> AsyncIterator[LiveConsole]:
    folder = tmp_path_factory.mktemp("console")
    mail = MailSink().start()
    chains = write_chains_file(
        folder / "chains.toml",
        (anvil.url, f"https://rpc.example.invalid/v2/{SECRET_PATH}"),
        name="Dev chain",
        tokens=[("USDT", TEST_USDT, 6)],
    )
    settings = Settings(
        data_dir=folder / "data",
        database_url=f"sqlite+aiosqlite:///{folder / 'gateway.db'}",
        chains_file=chains,
        secret_key=Fernet.generate_key().decode(),
        public_url="http://127.0.0.1",
        signup_policy="approval",
        smtp_url=mail.url,
        relayer_key=Account.create().key.hex(),
        _env_file=None,  # type: ignore[call-arg]
    )
    await _seed(settings)
    shots = folder / "screenshots"
    shots.mkdir()
    try:
        with LiveServer(create_app(settings, migrate=False)) as server:
            yield LiveConsole(server.url, shots)
    finally:
        mail.stop()


async def test_an_operator_runs_the_gateway_from_the_console(
    browser: Browser, live: LiveConsole
) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(viewport=DESKTOP, locale="en-US")  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(f"{live.url}/admin/")
        await expect(page.get_by_role("heading", name="Operator log-in")).to_be_visible()
        await live.capture(page, "login")
        await page.get_by_label("Email address").fill(OPERATOR)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page).to_have_url(f"{live.url}/admin/merchants")
        await expect(page.get_by_role("link", name=MARKUP_NAME)).to_be_visible()
        await live.capture(page, "merchants")

        await page.get_by_label("Status").select_option("pending")
        await page.get_by_role("button", name="Apply").click()
        await expect(page.locator("#merchants-table tbody tr")).to_have_count(1)
        await page.get_by_role("link", name=MARKUP_NAME).click()
        await expect(page.get_by_role("heading", name=MARKUP_NAME, level=1)).to_be_visible()
        await live.capture(page, "merchant-pending")
        await page.get_by_role("button", name="Approve").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Approved: the merchant's owner can log in now."
        )

        await page.goto(f"{live.url}/admin/merchants?q=cafe.example")
        await page.get_by_role("link", name="Corner Café").click()
        await expect(page.get_by_role("cell", name="owner@cafe.example")).to_be_visible()
        await live.capture(page, "merchant")
        await page.get_by_label("Reason (kept in the audit log)").fill("Chargebacks <reported>")
        confirmations: list[str] = []

        async def confirm(dialog: Any) -> None:
            confirmations.append(dialog.message)
            await dialog.accept()

        page.once("dialog", confirm)
        await page.get_by_role("button", name="Disable merchant").click()
        await expect(page.locator("#merchant-status")).to_have_text("Disabled")
        assert confirmations == ["Disable this merchant? Its API keys stop working at once."]
        await expect(page.get_by_text('"reason": "Chargebacks <reported>"')).to_be_visible()
        await live.capture(page, "merchant-disabled")

        await page.get_by_role("link", name="Audit log").click()
        await expect(page.get_by_role("cell", name="merchant.disabled")).to_be_visible()
        await live.capture(page, "audit")

        await page.get_by_role("link", name="Chains").click()
        rows = page.locator("#rpc-table tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("Answering")
        await expect(rows.nth(1)).to_contain_text("Failing")
        assert SECRET_PATH not in await page.content()
        await live.capture(page, "chains")

        await page.get_by_role("link", name="Sweeps").click()
        await expect(page.get_by_role("heading", name="Sweeps", level=1)).to_be_visible()
        await live.capture(page, "sweeps")

        await page.get_by_role("link", name="Settings").click()
        await page.get_by_role("radio", name=re.compile(r"^Invite")).check()
        await page.get_by_role("button", name="Save sign-up policy").click()
        await expect(page.get_by_role("status")).to_contain_text("Sign-up policy saved")
        await page.get_by_role("button", name="Make an invite code").click()
        await expect(page.locator("#invite-code")).to_have_text(re.compile(r"^inv_"))
        await live.capture(page, "settings")

        await page.get_by_role("link", name="Security").click()
        await page.get_by_role("button", name="Set up two-factor authentication").click()
        await expect(page.locator("#totp-secret")).to_be_visible()
        await live.capture(page, "security")

        await page.goto(f"{live.url}/admin/merchants?lang=zh-CN")
        await expect(page.get_by_role("heading", name="商户", exact=True)).to_be_visible()
        await live.capture(page, "merchants-zh-CN")
        await page.get_by_role("button", name="退出登录").click()
        await expect(page.get_by_role("heading", name="运营者登录")).to_be_visible()
        assert errors == []
    finally:
        await context.close()
