"""The payment-method picker in real headless Chromium, against the live gateway of
tests/cashier/browser_support.py (anvil, a real watcher): an invoice offering USDT and USDC shows
the choices and no address, on a phone and a desktop, in English and Chinese, with no console
error and no axe violation; picking USDC shows the USDC deposit, and a second tab still showing
the picker turns into the pay page by itself. Screenshots as the cashier's other tests take them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tests.cashier.browser_support import (
    DESKTOP,
    LiveCashier,
    axe_violations,
    browser,
    chromium,
    live,
    module_dir,
    open_page,
)

from stablegate.compat.greenfield.payment_methods import method_id
from stablegate.db.engine import session_scope
from stablegate.models import Order
from stablegate.models.order import NotifyFormat

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.anvil, pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium", "live", "module_dir"]  # fixtures used by the tests below


async def two_method_invoice(live: LiveCashier) -> Order:
    """An order stored as the Greenfield API stores an invoice offering USDT and USDC (in USDT,
    10): on its default USDT, not activated."""
    order = await live.order("10", description="Order #2001")
    chain = live.orders.registry.require(31337)
    ids = [method_id(symbol, chain.network) for symbol in ("USDT", "USDC")]
    async with session_scope(live.sessions) as session:
        stored = await session.get(Order, order.id)
        assert stored is not None
        stored.notify_format = NotifyFormat.GREENFIELD
        stored.metadata_json = {
            "greenfield": {
                "amount": "10",
                "currency": "USDT",
                "metadata": None,
                "orderId": "2001",
                "checkout": {"paymentMethods": ids},
                "paymentMethod": ids[0],
                "offeredMethods": ids,
                "activated": False,
            }
        }
    return order


async def test_the_picker_hides_the_address_until_the_customer_picks_usdc(
    browser: Browser, live: LiveCashier
) -> None:
    from playwright.async_api import expect

    order = await two_method_invoice(live)
    url = f"{live.url}/cashier/{order.id}"
    context, watch = await open_page(browser, url)
    other, other_watch = await open_page(browser, url, viewport=DESKTOP)
    page = watch.page
    try:
        await expect(page.locator("#heading")).to_have_text("Choose how to pay")
        await expect(page.locator("#status-text")).to_have_text("Waiting for your choice")
        choices = page.locator("button.choice")
        await expect(choices).to_have_count(2)
        await expect(choices.first).to_contain_text("USDT")
        await expect(choices.nth(1)).to_contain_text("USDC")
        await expect(choices.nth(1)).to_contain_text("10 USDC")
        await expect(page.locator("#address")).to_have_count(0)
        await expect(page.locator("#qr")).to_have_count(0)
        assert order.to_address.lower()[2:] not in (await page.content()).lower()
        await expect(page.locator("#countdown")).not_to_have_text("", timeout=3000)
        assert await axe_violations(page) == []
        await live.screenshot(page, "cashier-picker-phone-en")
        await expect(other_watch.page.locator("button.choice")).to_have_count(2)
        await live.screenshot(other_watch.page, "cashier-picker-desktop-en")

        await choices.nth(1).click()
        await expect(page.locator("#heading")).to_have_text("Pay with USDC")
        await expect(page.locator("#address")).to_have_text(order.to_address)
        await expect(page.locator("#token")).to_have_text("USDC")
        await expect(page.locator("button.choice")).to_have_count(0)
        await live.screenshot(page, "cashier-picked-phone-en")
        # The other tab learns of the choice from the live view and shows the pay page.
        await expect(other_watch.page.locator("#address")).to_have_text(
            order.to_address, timeout=15_000
        )
        assert watch.errors == [] and other_watch.errors == []
    finally:
        await context.close()
        await other.close()


async def test_the_picker_in_chinese(browser: Browser, live: LiveCashier) -> None:
    from playwright.async_api import expect

    order = await two_method_invoice(live)
    context, watch = await open_page(browser, f"{live.url}/cashier/{order.id}", locale="zh-CN")
    try:
        await expect(watch.page.locator("#heading")).to_have_text("选择付款方式")
        await expect(watch.page.locator("button.choice")).to_have_count(2)
        await live.screenshot(watch.page, "cashier-picker-phone-zh-CN")
        assert watch.errors == []
    finally:
        await context.close()
