"""The Orders pages in real headless Chromium (the harness of test_dashboard_browser.py): the
list with its filters and a bad one, an order page that turns "Completed" by itself when the
payment is settled behind it (no reload), Cancel with its confirmation, the list in Chinese.
axe-core finds nothing on any page; each is captured at 1280x800 and 390x844
(``dashboard-orders-*.png``, ``dashboard-order-*.png``; into docs/screenshots/ with
STABLEGATE_SAVE_SCREENSHOTS=1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.cashier.browser_support import DESKTOP, browser, chromium
from tests.chain_files import write_chains_file
from tests.dashboard.dashboard_support import PASSWORD, MailSink
from tests.dashboard.order_support import PaymentChain, merchant_of, new_order, pay_out_to
from tests.dashboard.test_dashboard_browser import LiveDashboard
from tests.support import TEST_USDT, TEST_USDT18, LiveServer

from stablegate.api.app import create_app
from stablegate.chain.registry import load_registry
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.migrations import upgrade
from stablegate.models import Order, WebhookDelivery, WebhookEvent
from stablegate.models.webhook_event import EventStatus
from stablegate.orders.context import OrderContext
from stablegate.orders.service import cancel_order

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium"]  # fixtures used by the tests below

EMAIL = "owner@teahouse.example"


@dataclass
class LiveOrders:
    dashboard: LiveDashboard
    sessions: async_sessionmaker[AsyncSession]  # the live server's database, from this loop
    orders: OrderContext


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveOrders]:
    folder = tmp_path_factory.mktemp("orders")
    mail = MailSink().start()
    chains = write_chains_file(
        folder / "chains.toml",
        tokens=[("USDT", TEST_USDT, 6), ("USDT18", TEST_USDT18, 18)],
        explorer_url="https://explorer.example",
    )
    settings = Settings(
        data_dir=folder / "data",
        database_url=f"sqlite+aiosqlite:///{folder / 'gateway.db'}",
        chains_file=chains,
        secret_key=Fernet.generate_key().decode(),
        public_url="http://127.0.0.1",
        signup_policy="open",
        smtp_url=mail.url,
        _env_file=None,  # type: ignore[call-arg]
    )
    engine = make_engine(settings.effective_database_url)
    await upgrade(engine)
    shots = folder / "screenshots"
    shots.mkdir()
    context = OrderContext(
        registry=load_registry(chains),
        public_url=settings.public_url,
        max_order_amount=settings.max_order_amount,
    )
    try:
        with LiveServer(create_app(settings, migrate=False)) as server:
            dashboard = LiveDashboard(server.url, settings.public_url, mail, shots)
            yield LiveOrders(dashboard, make_sessionmaker(engine), context)
    finally:
        await engine.dispose()
        mail.stop()


async def sign_up_and_in(page: Page, live: LiveDashboard) -> None:
    from playwright.async_api import expect

    await page.goto(f"{live.url}/dashboard/signup")
    await page.get_by_label("Business name").fill("Tea House")
    await page.get_by_label("Email address").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Account created")).to_be_visible()
    await page.goto(live.reachable(live.mail.link_for(EMAIL)))
    await page.get_by_role("button", name="Confirm my address").click()
    await page.goto(f"{live.url}/dashboard/login")
    await page.get_by_label("Email address").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{live.url}/dashboard/keys")


async def test_orders_list_an_order_that_completes_live_and_cancel(
    browser: Browser, live: LiveOrders
) -> None:
    from playwright.async_api import expect

    shown = live.dashboard
    clock = SystemClock()
    context = await browser.new_context(viewport=DESKTOP, locale="en-US")  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await sign_up_and_in(page, shown)
        await page.get_by_role("link", name="Orders").click()
        await expect(page.get_by_text("No orders yet.")).to_be_visible()
        await shown.capture(page, "orders-empty")

        merchant_id = await merchant_of(live.sessions, EMAIL)
        await pay_out_to(live.sessions, merchant_id, clock.now_ms())
        make = live.orders
        chain = PaymentChain(live.sessions, make.registry, make, clock)
        paid = await new_order(
            live.sessions, clock, make, merchant_id, orderNo="TEA-1001", amount="18.5"
        )
        await chain.pay(paid.id, 18_500_000)
        short = await new_order(
            live.sessions, clock, make, merchant_id, orderNo="TEA-1002", amount="40"
        )
        await chain.pay(short.id, 25_000_000)
        priced = await new_order(
            live.sessions, clock, make, merchant_id, orderNo="TEA-1003", symbol="USDT18"
        )
        async with session_scope(live.sessions) as session:
            await session.execute(
                update(Order)
                .where(Order.id == priced.id)
                .values(fiat_amount="150.00", fiat_currency="CNY", rate="7.5")
            )
        dropped = await new_order(live.sessions, clock, make, merchant_id, orderNo="TEA-1004")
        async with session_scope(live.sessions) as session:
            await cancel_order(
                session, clock, make, merchant_id=merchant_id, order_id=dropped.id, order_no=None
            )
        waiting = await new_order(
            live.sessions,
            clock,
            make,
            merchant_id,
            orderNo="TEA-1005",
            amount="12",
            description="Oolong, 250 g",
            metadata={"table": 4, "note": "<script>alert(1)</script>"},
        )
        spare = await new_order(live.sessions, clock, make, merchant_id, orderNo="TEA-1006")

        await page.reload()
        await expect(page.locator("#orders-table tbody tr")).to_have_count(6)
        await expect(page.get_by_role("cell", name="150.00 CNY")).to_be_visible()
        await shown.capture(page, "orders")

        await page.get_by_label("Status").select_option("completed")
        await page.get_by_role("button", name="Apply filters").click()
        await expect(page.locator("#orders-table tbody tr")).to_have_count(1)
        await expect(page.get_by_role("link", name="TEA-1001")).to_be_visible()
        csv_link = await page.locator("#orders-csv").get_attribute("href")
        assert csv_link is not None and "status=completed" in csv_link
        await shown.capture(page, "orders-filtered")

        await page.goto(f"{shown.url}/dashboard/orders?from=2026-02-30")
        await expect(page.get_by_role("alert")).to_have_text(
            "Enter dates as YYYY-MM-DD, e.g. 2026-01-31."
        )
        await shown.capture(page, "orders-bad-filter")

        # One order: it turns "Completed" when its payment settles, without a reload.
        await page.goto(f"{shown.url}/dashboard/orders?q=TEA-1005")
        await page.get_by_role("link", name="TEA-1005").click()
        await expect(page.get_by_role("heading", name="Order TEA-1005")).to_be_visible()
        status = page.locator("#order-status")
        await expect(status).to_have_text("Pending")
        await expect(page.locator("#cancel-form")).to_be_visible()
        await shown.capture(page, "order-pending")
        marker = await page.evaluate("window.__notReloaded = true")
        assert marker is True
        await chain.pay(waiting.id, 12_000_000)
        await expect(status).to_have_text("Completed", timeout=10_000)
        await expect(status).to_have_attribute("data-status", "completed")
        await expect(page.locator("#order-paid")).to_have_text("12 USDT")
        await expect(page.locator("#cancel-form")).to_be_hidden()
        await expect(page.locator("#order-new-payments")).to_be_visible()
        assert await page.evaluate("window.__notReloaded") is True  # the same page, updated
        # Two delivery attempts of its first event, as the webhook worker records them.
        async with session_scope(live.sessions) as session:
            event = await session.scalar(
                select(WebhookEvent).where(WebhookEvent.order_id == waiting.id).limit(1)
            )
            assert event is not None
            event.attempts = 2
            event.status = EventStatus.DELIVERED
            for attempt, (code, outcome, body) in enumerate(
                [(503, "failure", "upstream unavailable"), (200, "success", '{"ok":true}')], 1
            ):
                session.add(
                    WebhookDelivery(
                        event_id=event.id,
                        merchant_id=merchant_id,
                        attempt=attempt,
                        url="https://teahouse.example/hooks/stablegate",
                        outcome=outcome,
                        response_status=code,
                        response_body=body,
                        latency_ms=40,
                        attempted_at_ms=clock.now_ms() + attempt * 1000,
                    )
                )
        await page.get_by_role("link", name="Reload to see them").click()
        await expect(page.get_by_role("link", name=f"0x{chain.block:064x}")).to_be_visible()
        await expect(page.get_by_role("cell", name="upstream unavailable")).to_be_visible()
        await shown.capture(page, "order-completed")

        # Cancel, after the browser's confirmation.
        await page.goto(f"{shown.url}/dashboard/orders/{spare.id}")
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Cancel order").click()
        await expect(page.get_by_role("status").first).to_have_text("The order is cancelled.")
        await expect(status).to_have_text("Cancelled")
        await shown.capture(page, "order-cancelled")

        await page.goto(f"{shown.url}/dashboard/orders?lang=zh-CN")
        await expect(page.get_by_role("heading", name="订单", exact=True)).to_be_visible()
        await shown.capture(page, "orders-zh-CN")
        await page.goto(f"{shown.url}/dashboard/orders/{short.id}")
        await expect(status).to_have_text("待付款")
        await expect(page.locator("#order-exceptions")).to_have_text("少付")
        await shown.capture(page, "order-underpaid-zh-CN")
        # The one error the console saw: the bad filter's answer is a 400.
        assert errors == [
            "Failed to load resource: the server responded with a status of 400 (Bad Request)"
        ]
    finally:
        await context.close()
