"""The cashier page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Against a real gateway (uvicorn in a thread, SQLite), the session's anvil node and a real watcher
running beside it: the page streams and polls the real API while the test pays on chain (the
harness is tests/cashier/browser_support.py). Screenshots go to the test's tmp dir, and to
docs/screenshots/ with STABLEGATE_SAVE_SCREENSHOTS=1.

Chromium comes from `scripts/install_chromium.sh` (make install). Without it these tests skip,
or fail when CI=true or STABLEGATE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from eth_account.signers.local import LocalAccount
from tests.cashier.browser_support import (
    PHONE,
    LiveCashier,
    browser,
    chromium,
    live,
    module_dir,
    open_page,
    shown_qr,
)
from tests.cashier.stream_support import RawStream

from stablegate.orders.payment_request import payment_uri, qr_data_url

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.anvil, pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium", "live", "module_dir"]  # fixtures used by the tests below


async def test_status_changes_live_from_pending_to_confirming_to_completed(
    browser: Browser, live: LiveCashier, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import expect

    order = await live.order(
        "25.5",
        description="Order #1042: 2 × Espresso <b>beans</b>",
        redirectUrl="https://shop.example/thanks?order=1042",
    )
    context, watch = await open_page(
        browser,
        f"{live.url}/cashier/{order.id}",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = watch.page
    try:
        status = page.locator("#status-text")
        await expect(status).to_have_text("Waiting for payment")
        await expect(page.locator("#description")).to_have_text(
            "Order #1042: 2 × Espresso <b>beans</b>"
        )
        await expect(page.locator("#amount")).to_have_text("25.5")
        await expect(page.locator("#address")).to_have_text(order.to_address)
        # The script reveals the copy buttons and runs the countdown.
        await expect(page.locator("button.copy")).to_have_count(2)
        for button in await page.locator("button.copy").all():
            await expect(button).to_be_visible()
        countdown = page.locator("#countdown")
        first = await countdown.inner_text()
        await expect(countdown).not_to_have_text(first, timeout=3000)
        assert (await countdown.inner_text()).startswith("14:")
        await expect(page.locator("#redirect")).to_be_hidden()
        await live.screenshot(page, "cashier-pending")

        copy_address = page.get_by_role("button", name="Copy address")
        await copy_address.click()
        await expect(copy_address).to_have_text("Copied")
        assert await page.evaluate("navigator.clipboard.readText()") == order.to_address
        await expect(copy_address).to_have_text("Copy", timeout=3000)

        # The QR code decodes to the deposit address; the EIP-681 switch swaps it in place.
        qr = page.locator("#qr")
        assert await shown_qr(qr) == [order.to_address]
        await page.get_by_role("link", name="Address and amount (EIP-681)").click()
        # The EIP-681 code is drawn into the page for the amount due (all of it here).
        await expect(qr).to_have_attribute("src", qr_data_url(payment_uri(order)))
        assert await shown_qr(qr) == [payment_uri(order)]
        assert page.url.endswith(f"/cashier/{order.id}?lang=en&qr=eip681")

        # Pay on chain while the page stays open: the text changes without a reload.
        await page.evaluate("window.stillTheSamePage = true")
        await live.pay(order, order.amount, customer_accounts[0])
        await expect(status).to_have_text("Payment received, confirming", timeout=15_000)
        await expect(page.locator("#confirmations")).to_have_text("Confirmations: 1 of 2")
        await expect(page.locator("#received")).to_have_text("Received 25.5 of 25.5 USDT")
        await live.mine(1)
        await expect(page.locator("#confirmations")).to_have_text("Confirmations: 2")
        await expect(page.locator(".pay")).to_be_hidden()
        await live.screenshot(page, "cashier-confirming")

        await live.mine(70)  # past anvil's finalized tag
        await expect(status).to_have_text("Payment complete", timeout=15_000)
        redirect = page.locator("#redirect")
        await expect(redirect).to_be_visible()
        await expect(redirect).to_have_attribute("href", "https://shop.example/thanks?order=1042")
        await expect(page.locator("#confirmations")).to_be_hidden()
        assert await page.evaluate("window.stillTheSamePage") is True
        await live.screenshot(page, "cashier-completed")

        assert any(
            url.endswith(f"/api/v1/public/orders/{order.id}/events") for url in watch.requests
        )
        assert watch.errors == []
    finally:
        await context.close()


async def test_chinese_page_and_live_text(browser: Browser, live: LiveCashier) -> None:
    from playwright.async_api import expect

    order = await live.order("3", description="咖啡 ×1")
    # Accept-Language from the browser's locale picks Simplified Chinese; no ?lang needed.
    context, watch = await open_page(browser, f"{live.url}/cashier/{order.id}", locale="zh-CN")
    page = watch.page
    try:
        assert await page.get_attribute("html", "lang") == "zh-CN"
        await expect(page.locator("h1")).to_have_text("使用 USDT 支付")
        await expect(page.locator("#status-text")).to_have_text("等待付款")
        await expect(page.get_by_role("button", name="复制地址")).to_be_visible()
        await expect(page.get_by_text("收款地址")).to_be_visible()
        await live.screenshot(page, "cashier-pending-zh-CN")
        # The language links switch to English and back.
        await page.get_by_role("link", name="English").click()
        await expect(page.locator("#status-text")).to_have_text("Waiting for payment")
        assert await page.get_attribute("html", "lang") == "en"
        assert watch.errors == []
    finally:
        await context.close()


async def test_without_javascript_the_essentials_are_there_and_dev_pay_works(
    browser: Browser, live: LiveCashier
) -> None:
    from playwright.async_api import expect

    order = await live.order("7.25")
    context, watch = await open_page(browser, f"{live.url}/cashier/{order.id}", javascript=False)
    page = watch.page
    try:
        await expect(page.locator("#amount")).to_have_text("7.25")
        await expect(page.locator("#token")).to_have_text("USDT")
        await expect(page.locator("#network")).to_have_text("Local dev chain")
        await expect(page.locator("#address")).to_have_text(order.to_address)
        await expect(page.locator("#status-text")).to_have_text("Waiting for payment")
        await expect(page.locator("#expire-time")).to_contain_text("UTC")
        await expect(page.locator("#countdown")).to_have_text("15:00")
        await expect(page.locator("button.copy").first).to_be_hidden()
        qr = page.locator("#qr")
        await expect(qr).to_be_visible()
        assert await shown_qr(qr) == [order.to_address]
        await live.screenshot(page, "cashier-pending-no-js")

        # Without JavaScript the QR mode switch is a plain link.
        await page.get_by_role("link", name="Address and amount (EIP-681)").click()
        # The EIP-681 code is drawn into the page for the amount due (all of it here).
        await expect(qr).to_have_attribute("src", qr_data_url(payment_uri(order)))
        assert await shown_qr(qr) == [payment_uri(order)]

        # The test wallet pays by a plain form post and a redirect back.
        await page.get_by_role("button", name="Pay with test wallet").click()
        await expect(page.locator(".notice")).to_have_text(
            "Test payment sent. The status updates when the gateway sees it."
        )
        for _ in range(50):
            await page.reload()
            if await page.locator("#status-text").inner_text() != "Waiting for payment":
                break
            await asyncio.sleep(0.2)
        await expect(page.locator("#status-text")).to_have_text("Payment received, confirming")
        await expect(page.locator("#received")).to_have_text("Received 7.25 of 7.25 USDT")
        assert watch.errors == []
    finally:
        await context.close()


async def test_polling_takes_over_when_events_are_unavailable(
    browser: Browser, live: LiveCashier, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import Route, expect

    order = await live.order("1.5")
    context = await browser.new_context(viewport=PHONE)

    async def refuse(route: Route) -> None:
        await route.fulfill(status=503, body="no streams here")

    await context.route("**/events", refuse)
    page = await context.new_page()
    polls: list[str] = []
    page.on(
        "request",
        lambda request: (
            polls.append(request.url)
            if request.url.endswith(f"/api/v1/public/orders/{order.id}")
            else None
        ),
    )
    try:
        await page.goto(f"{live.url}/cashier/{order.id}")
        await live.pay(order, order.amount, customer_accounts[2])
        await expect(page.locator("#status-text")).to_have_text(
            "Payment received, confirming", timeout=15_000
        )
        assert polls, "the page should have polled the order"
    finally:
        await context.close()


async def test_a_refused_stream_falls_back_to_polling(
    browser: Browser, live: LiveCashier, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import expect

    # The test and the browser share 127.0.0.1: take every stream it may open, until refused.
    port = int(live.url.rsplit(":", 1)[1])
    other = await live.order("1")
    held: list[RawStream] = []
    context = await browser.new_context(viewport=PHONE)
    try:
        while not held or held[-1].status == 200:
            held.append(await RawStream.open(port, other.id))
            assert len(held) <= 10
        assert held[-1].status == 429
        assert (await held[-1].error())["code"] == "too_many_streams"

        order = await live.order("2.5")
        page = await context.new_page()
        stream_answers: list[int] = []
        polls: list[str] = []
        page.on(
            "response",
            lambda response: (
                stream_answers.append(response.status)
                if response.url.endswith(f"/api/v1/public/orders/{order.id}/events")
                else None
            ),
        )
        page.on(
            "request",
            lambda request: (
                polls.append(request.url)
                if request.url.endswith(f"/api/v1/public/orders/{order.id}")
                else None
            ),
        )
        await page.goto(f"{live.url}/cashier/{order.id}")
        await live.pay(order, order.amount, customer_accounts[1])
        await expect(page.locator("#status-text")).to_have_text(
            "Payment received, confirming", timeout=30_000
        )
        # Refused once, and not retried: the page polled instead.
        assert stream_answers == [429]
        assert polls
    finally:
        await context.close()
        for stream in held:
            await stream.close()
