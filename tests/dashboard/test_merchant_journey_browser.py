"""A new merchant's whole first day, in real headless Chromium against a real gateway on the
dev chain: sign-up, the confirmation mail caught by a local SMTP sink, log-in, a payout address
and a notify URL set on their pages, an API key created; an order created with that key through
the SDK appears in the list; the customer pays on chain and the open order page turns
"Completed" without a reload; the CSV export holds the order; a webhook resend shows a new
attempt in the delivery log. The real watcher and webhook worker run beside the server, and the
shop's endpoint is a real HTTP server. Every page is checked by axe-core and captured
(``dashboard-journey-*.png``; into docs/screenshots/ with STABLEGATE_SAVE_SCREENSHOTS=1).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from stablegate_client import AsyncClient
from tests.cashier.browser_support import DESKTOP, browser, chromium
from tests.chain_files import dev_chain_settings
from tests.dashboard.dashboard_support import PASSWORD, MailSink
from tests.dashboard.test_dashboard_browser import LiveDashboard
from tests.support import LiveServer
from tests.webhooks.webhook_support import Receiver

from stablegate.api.app import create_app
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.blocks import fetch_header
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.chain.registry import load_registry
from stablegate.clock import FakeClock
from stablegate.dashboard.order_export import safe_cell
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.migrations import upgrade
from stablegate.orders.context import OrderContext
from stablegate.secret_box import load_secret_box
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions
from stablegate.webhooks.signing_key import load_signing_key
from stablegate.webhooks.worker import WebhookWorker

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.anvil, pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium"]  # fixtures used by the tests below

EMAIL = "owner@espresso-bar.example"
# A fresh wallet of the merchant's (no code anywhere, so the payout check passes).
PAYOUT = Account.from_key(keccak(text="stablegate journey payout wallet")).address


@dataclass
class Journey:
    dashboard: LiveDashboard
    shop: Receiver  # the merchant's webhook endpoint
    clock: FakeClock  # the gateway's "now": the chain's time, so orders expire in chain time
    rpc: RpcClient
    usdt: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def journey(
    tmp_path_factory: pytest.TempPathFactory,
    anvil: AnvilNode,
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
) -> AsyncIterator[Journey]:
    folder = tmp_path_factory.mktemp("journey")
    snapshot = await rpc.call("evm_snapshot", [])
    header = await fetch_header(rpc, "latest")
    assert header is not None
    clock = FakeClock(header.time_ms)
    mail = MailSink().start()
    settings = dev_chain_settings(
        folder,
        anvil.url,
        gateway_contracts,
        dev_tokens,
        public_url="http://127.0.0.1",
        signup_policy="open",
        smtp_url=mail.url,
        allow_private_webhooks=True,  # the shop's endpoint is on 127.0.0.1
    )
    # The server runs in its own thread and loop; the watcher and the webhook worker run in the
    # test's loop, each side on its own engine over the same SQLite file.
    engine = make_engine(settings.effective_database_url)
    await upgrade(engine)
    sessions = make_sessionmaker(engine)
    registry = load_registry(settings.chains_file)
    chain = registry.get(31337)
    assert chain is not None
    orders = OrderContext(registry, settings.public_url, settings.max_order_amount)
    stop = asyncio.Event()
    watcher_rpc = RpcClient([anvil.url])
    watcher = ChainWatcher(
        chain, sessions, clock, watcher_rpc, orders, options=WatcherOptions(poll_interval=0.1)
    )
    worker = WebhookWorker(
        sessions, clock, settings, load_secret_box(settings), load_signing_key(settings)
    )
    running = [
        asyncio.create_task(watcher.run_forever(stop)),
        asyncio.create_task(worker.run_forever(stop)),
    ]
    shots = folder / "screenshots"
    shots.mkdir()
    try:
        app = create_app(settings, clock=clock, migrate=False)
        with Receiver(clock) as shop, LiveServer(app) as server:
            dashboard = LiveDashboard(server.url, settings.public_url, mail, shots)
            yield Journey(dashboard, shop, clock, rpc, dev_tokens["USDT"])
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), timeout=15)
        await watcher_rpc.aclose()
        await engine.dispose()
        mail.stop()
        assert await rpc.call("evm_revert", [snapshot]) is True


async def _rows(page: Page, selector: str) -> int:
    return await page.locator(selector).count()


async def test_from_sign_up_to_a_paid_order_and_a_resent_webhook(
    browser: Browser, journey: Journey, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import expect

    live = journey.dashboard
    context = await browser.new_context(viewport=DESKTOP, locale="en-US")  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        # Sign up, confirm the address from the mail, log in.
        await page.goto(f"{live.url}/dashboard/signup")
        await page.get_by_label("Business name").fill("Espresso Bar")
        await page.get_by_label("Email address").fill(EMAIL)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Create account").click()
        await expect(page.get_by_role("heading", name="Account created")).to_be_visible()
        await page.goto(live.reachable(live.mail.link_for(EMAIL)))
        await page.get_by_role("button", name="Confirm my address").click()
        await expect(page.get_by_role("heading", name="Email address confirmed")).to_be_visible()
        await page.get_by_role("link", name="Log in").click()
        await page.get_by_label("Email address").fill(EMAIL)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page).to_have_url(f"{live.url}/dashboard/keys")

        # Where the money goes, and where the shop hears of it.
        await page.get_by_role("link", name="Settings").click()
        await page.get_by_label(re.compile(r"\(chain 31337\)")).fill(PAYOUT.lower())
        dev_chain = page.locator("form.settings-payout").filter(
            has=page.locator('input[name="chain_id"][value="31337"]')
        )
        await dev_chain.get_by_role("button", name="Save").click()
        await expect(page.get_by_role("status")).to_have_text(
            "The payout address is saved. New orders pay out to it."
        )
        await expect(page.get_by_label(re.compile(r"\(chain 31337\)"))).to_have_value(PAYOUT)
        await live.capture(page, "journey-settings")
        await page.get_by_role("link", name="Webhooks", exact=True).click()
        notify_url = journey.shop.url("shop/webhooks")
        await page.get_by_role("textbox", name="Default notify URL").fill(notify_url)
        await page.locator("#notify-url").press("Enter")
        await expect(page.locator("#current-url")).to_have_text(notify_url)

        # An API key, its secret shown once.
        await page.get_by_role("link", name="API keys").click()
        await page.get_by_label("Label (optional)").fill("Shop backend")
        await page.get_by_role("button", name="Create key").click()
        api_key = (await page.locator("#api-key").inner_text()).strip()
        secret = (await page.locator("#secret-key").inner_text()).strip()

        # The shop's server creates an order with it through the SDK.
        async with AsyncClient(
            live.url, api_key, secret_key=secret, now_ms=journey.clock.now_ms
        ) as sdk:
            order = await sdk.create_order(31337, "USDT", "12.5", order_no="ESP-2001")
        await page.get_by_role("link", name="Orders", exact=True).click()
        row = page.get_by_role("link", name="ESP-2001")
        await expect(row).to_be_visible()
        await live.capture(page, "journey-orders")

        # The customer pays while the order page is open: it completes without a reload.
        await row.click()
        status = page.locator("#order-status")
        await expect(status).to_have_text("Pending")
        await page.evaluate("window.stillTheSamePage = true")
        customer = customer_accounts[0]
        units = 12_500_000
        call = tether_token().encode_call("transfer", order.to_address, units)
        await transact(journey.rpc, customer, journey.usdt, call)
        await journey.rpc.call("anvil_mine", [hex(70)])  # past anvil's finalized tag
        await expect(status).to_have_text("Completed", timeout=30_000)
        await expect(page.locator("#order-paid")).to_have_text("12.5 USDT")
        assert await page.evaluate("window.stillTheSamePage") is True
        await live.capture(page, "journey-order-completed")

        # The CSV export of the list holds it.
        await page.get_by_role("link", name="Orders", exact=True).click()
        href = await page.locator("#orders-csv").get_attribute("href")
        assert href is not None
        exported = await page.request.get(f"{live.url}{href}")
        assert exported.status == 200
        rows = list(csv.DictReader(io.StringIO(await exported.text())))
        # An id starting with "-" is exported with a leading apostrophe, as any formula-like cell.
        mine = [r for r in rows if safe_cell(order.order_id) in r.values()]
        assert len(mine) == 1 and "ESP-2001" in mine[0].values()
        assert "completed" in mine[0].values()

        # The shop got the signed webhooks; a resend shows one more attempt in the log.
        for _ in range(150):
            if any(b'"order.completed"' in hit.body for hit in journey.shop.snapshot()):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the shop never got order.completed")
        await page.get_by_role("link", name="Webhooks", exact=True).click()
        log = "table.log tbody tr"
        before = await _rows(page, log)
        assert before >= 1
        await live.capture(page, "journey-webhooks")
        hits = len(journey.shop.snapshot())
        await page.locator(log).first.get_by_role("button", name=re.compile("Resend")).click()
        # The resend's own answer first: a reload while its POST and redirect are still under
        # way fails with "not attached to an active page".
        await page.wait_for_url(re.compile(r"notice=resent"))
        for _ in range(150):
            await page.reload()
            if await _rows(page, log) > before:
                break
            await asyncio.sleep(0.2)
        assert await _rows(page, log) == before + 1
        assert len(journey.shop.snapshot()) == hits + 1
        await live.capture(page, "journey-webhook-resent")
        assert errors == [], errors
    finally:
        await context.close()
