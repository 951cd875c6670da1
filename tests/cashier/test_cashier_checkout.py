"""What the customer sees in each case, in Chromium at 390x844 and 1280x800, in English and
Chinese: pending, priced in fiat, partial (the amount due shown, copied and in the EIP-681 QR),
wrong token, late, overpaid, completed; axe-core finds no violation in any of them; merchant text
is inert; and "Pay with wallet" pays on anvil through a stub EIP-1193 wallet while the page
follows.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from tests.cashier.browser_support import (
    DESKTOP,
    PHONE,
    LiveCashier,
    axe_violations,
    browser,
    chromium,
    live,
    module_dir,
    open_page,
    shown_qr,
)

from stablegate.chain.anvil import AnvilNode
from stablegate.models import Order

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.anvil, pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium", "live", "module_dir"]  # fixtures used by the tests below

VIEWS = [
    ("phone", PHONE, "en"),
    ("phone", PHONE, "zh-CN"),
    ("desktop", DESKTOP, "en"),
    ("desktop", DESKTOP, "zh-CN"),
]
SAVED = {("phone", "en"), ("desktop", "zh-CN")}  # docs/screenshots for the states after pending


def due_uri(order: Order, due_units: int) -> str:
    return (
        f"ethereum:{order.token_address}@{order.chain_id}/transfer"
        f"?address={order.to_address}&uint256={due_units}"
    )


async def above_the_fold(page: Page, *selectors: str) -> None:
    height = page.viewport_size["height"] if page.viewport_size else 0
    for selector in selectors:
        box = await page.locator(selector).bounding_box()
        assert box is not None, selector
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, (selector, box, height)


async def address_in_whole_groups(page: Page, order: Order) -> None:
    """The address reads as itself and never breaks inside a group of four."""
    from playwright.async_api import expect

    await expect(page.locator("#address")).to_have_text(order.to_address)
    heights = {
        round(box["height"])
        for span in await page.locator("#address > span").all()
        if (box := await span.bounding_box()) is not None
    }
    assert len(heights) == 1, heights  # a group split over two lines would be taller


async def look(
    browser: Browser,
    live: LiveCashier,
    order: Order,
    state: str,
    *,
    saved: bool = True,
    fold: bool = True,
) -> None:
    """The order's page in every size and language: no errors, no axe violation, a screenshot."""
    from playwright.async_api import expect

    for size, viewport, language in VIEWS:
        context, watch = await open_page(
            browser, f"{live.url}/cashier/{order.id}?lang={language}", viewport=viewport
        )
        try:
            page = watch.page
            await expect(page.locator("#cashier")).to_have_attribute("data-state", state)
            assert await axe_violations(page) == [], (state, size, language)
            if fold and state in ("pending", "partial"):
                await above_the_fold(page, "#amount", "#address", "#qr")
                await address_in_whole_groups(page, order)
            name = f"cashier-{state}-{size}-{language}"
            if saved and (state == "pending" or (size, language) in SAVED):
                await live.screenshot(page, name)
            assert watch.errors == [], (state, size, language, watch.errors)
        finally:
            await context.close()


async def test_pending_page_in_every_size_and_language(browser: Browser, live: LiveCashier) -> None:
    order = await live.order("12.5", description="Order #77: 1 × Tea")
    await look(browser, live, order, "pending")


FIAT_PRICE = {
    "en": "72.00 CNY = 10 USDT at 7.2",
    "zh-CN": "72.00 CNY = 10 USDT（汇率 7.2）",
}


async def test_an_order_priced_in_fiat_shows_its_price_beside_the_amount(
    browser: Browser, live: LiveCashier
) -> None:
    from playwright.async_api import expect

    order = await live.order("10", description="Order #78: 2 × Tea")
    # The price columns as order creation stores them for 72 CNY at a fixed 7.2 CNY per USDT.
    await live.price(order, fiat_amount="72", currency="CNY", rate="7.2", rate_source="fixed")
    for size, viewport, language in VIEWS:
        context, watch = await open_page(
            browser, f"{live.url}/cashier/{order.id}?lang={language}", viewport=viewport
        )
        try:
            page = watch.page
            await expect(page.locator("#fiat-price")).to_have_text(FIAT_PRICE[language])
            await expect(page.locator("#amount")).to_have_text("10")
            assert await axe_violations(page) == [], (size, language)
            await above_the_fold(page, "#amount", "#fiat-price", "#address", "#qr")
            await address_in_whole_groups(page, order)
            await live.screenshot(page, f"cashier-fiat-{size}-{language}")
            assert watch.errors == [], (size, language, watch.errors)
        finally:
            await context.close()


async def test_partial_payment_asks_for_the_rest(
    browser: Browser, live: LiveCashier, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import expect

    order = await live.order("20")
    await live.pay(order, 10_000_000, customer_accounts[0])
    context, watch = await open_page(
        browser,
        f"{live.url}/cashier/{order.id}",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = watch.page
    try:
        await expect(page.locator("#cashier")).to_have_attribute(
            "data-state", "partial", timeout=15_000
        )
        await expect(page.locator("#amount")).to_have_text("10")
        await expect(page.locator("#instruction")).to_have_text(
            "Send the remaining 10 USDT on Local dev chain to the address below."
        )
        await expect(page.locator("#received")).to_have_text("Received 10 of 20 USDT")
        copy_amount = page.get_by_role("button", name="Copy amount")
        await copy_amount.click()
        assert await page.evaluate("navigator.clipboard.readText()") == "10"
        await page.get_by_role("link", name="Address and amount (EIP-681)").click()
        assert await shown_qr(page.locator("#qr")) == [due_uri(order, 10_000_000)]
        await expect(page.locator("#eip681-link")).to_have_attribute(
            "href", due_uri(order, 10_000_000)
        )

        # Another part arrives while the page is open: the amount, copy and QR follow it.
        await live.pay(order, 4_500_000, customer_accounts[0])
        await expect(page.locator("#amount")).to_have_text("5.5", timeout=15_000)
        await expect(page.locator("#copy-amount")).to_have_attribute("data-copy", "5.5")
        await page.get_by_role("link", name="Address and amount (EIP-681)").click()
        assert await shown_qr(page.locator("#qr")) == [due_uri(order, 5_500_000)]
        assert watch.errors == []
    finally:
        await context.close()
    await look(browser, live, order, "partial")


async def test_wrong_token_says_what_arrived_and_what_to_do(
    browser: Browser, live: LiveCashier, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import expect

    order = await live.order("3")
    await live.pay(order, 2_000_000, customer_accounts[1], token=live.usdc)
    context, watch = await open_page(browser, f"{live.url}/cashier/{order.id}")
    page = watch.page
    try:
        lines = page.locator("#wrong-token-lines li")
        for _ in range(120):  # rendered once the watcher has recorded the transfer
            if await lines.count():
                break
            await page.wait_for_timeout(500)
            await page.reload()
        await expect(lines).to_have_text(
            ["We received 2 USDC at this address, but this order expects USDT."]
        )
        await expect(page.locator("#wrong-token")).to_contain_text("Do not send it again")
        await expect(page.locator("#support")).to_contain_text("Contact Browser Shop")
        await expect(page.locator("#amount")).to_have_text("3")  # nothing counted
        assert watch.errors == []
    finally:
        await context.close()
    # The explanation comes first, so the QR code may sit lower here.
    await look(browser, live, order, "pending", saved=False, fold=False)
    await look_named(browser, live, order, "wrong-token")


async def look_named(browser: Browser, live: LiveCashier, order: Order, name: str) -> None:
    for size, viewport, language in VIEWS:
        if (size, language) not in SAVED:
            continue
        context, watch = await open_page(
            browser, f"{live.url}/cashier/{order.id}?lang={language}", viewport=viewport
        )
        try:
            await live.screenshot(watch.page, f"cashier-{name}-{size}-{language}")
        finally:
            await context.close()


async def test_late_payment_is_explained_with_the_way_back(
    browser: Browser, live: LiveCashier, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import expect

    order = await live.order("5", redirectUrl="https://shop.example/order/5")
    context, watch = await open_page(browser, f"{live.url}/cashier/{order.id}")
    page = watch.page
    try:
        await live.expire(order)
        await live.wait_status(order, "expired")
        await expect(page.locator("#status-text")).to_have_text(
            "This order has expired", timeout=30_000
        )
        await live.pay(order, order.amount, customer_accounts[2])
        await live.mine(70)
        for _ in range(120):  # recorded once final
            if await page.locator("#cashier").get_attribute("data-state") == "late":
                break
            await page.wait_for_timeout(500)
            await page.reload()
        await expect(page.locator("#cashier")).to_have_attribute("data-state", "late")
        await expect(page.locator("#state-text")).to_contain_text(
            "Your payment of 5 USDT arrived after this order expired"
        )
        await expect(page.locator("#support")).to_be_visible()
        await expect(page.locator("#redirect")).to_have_attribute(
            "href", "https://shop.example/order/5"
        )
        await expect(page.locator("#redirect")).to_be_visible()
        assert watch.errors == []
    finally:
        await context.close()
    await look(browser, live, order, "late")


async def test_overpaid_and_completed_pages(
    browser: Browser, live: LiveCashier, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import expect

    exact = await live.order("4", redirectUrl="https://shop.example/order/4")
    over = await live.order("4", redirectUrl="https://shop.example/order/4b")
    await live.pay(exact, exact.amount, customer_accounts[0])
    await live.pay(over, 2 * over.amount, customer_accounts[0])
    await live.mine(70)  # past anvil's finalized tag
    await live.wait_status(exact, "completed")
    await live.wait_status(over, "completed")
    context, watch = await open_page(browser, f"{live.url}/cashier/{over.id}")
    page = watch.page
    try:
        await expect(page.locator("#heading")).to_have_text("Paid", timeout=15_000)
        await expect(page.locator("#cashier")).to_have_attribute("data-state", "paid_over")
        await expect(page.locator("#state-text")).to_contain_text(
            "You sent 4 USDT more than the order's 4 USDT"
        )
        await expect(page.locator("#support")).to_be_visible()
        await expect(page.locator("#redirect")).to_be_visible()
        tx = await page.locator("#tx-hash").inner_text()
        assert tx.startswith("0x") and len(tx) == 66
        await expect(page.locator("#tx-link")).to_be_hidden()  # anvil has no explorer
        await expect(page.locator("#paid-time")).not_to_be_empty()
        assert watch.errors == []
    finally:
        await context.close()
    await look(browser, live, over, "paid_over")
    await look(browser, live, exact, "paid")


async def test_merchant_text_is_inert(browser: Browser, live: LiveCashier) -> None:
    from playwright.async_api import expect

    payload = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    merchant = await live.merchant(f"Shop {payload}")
    order = await live.order("1", merchant_id=merchant, description=f"Item {payload}")
    dialogs: list[str] = []

    async def prepare(context: BrowserContext) -> None:
        context.on("page", lambda p: p.on("dialog", lambda d: dialogs.append(d.message)))

    context, watch = await open_page(browser, f"{live.url}/cashier/{order.id}", prepare=prepare)
    page = watch.page
    try:
        await expect(page.locator("#merchant-name")).to_have_text(f"Shop {payload}")
        await expect(page.locator("#description")).to_have_text(f"Item {payload}")
        assert await page.locator("main img[src=x], main script").count() == 0
        assert dialogs == [] and watch.errors == []
    finally:
        await context.close()


# -- Pay with wallet: a stub EIP-1193 wallet whose requests Python forwards to anvil -----------

ICON = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24">'
        b'<circle cx="12" cy="12" r="10" fill="#f59e0b"/></svg>'
    ).decode()
)
STUB = """
(() => {
  const provider = {
    async request({ method, params }) {
      const answer = JSON.parse(await window.__stubRpc(method, JSON.stringify(params || [])));
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
    on() {}, removeListener() {},
  };
  const info = Object.freeze({ uuid: "5f0c1a2e-7d3b-4c39-9a61-0b8f5e4c2d10",
    name: "Stub Wallet", icon: "%ICON%", rdns: "local.stablegate.stub" });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider",
    { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();
""".replace("%ICON%", ICON)


class StubWallet:
    """Answers like a wallet on another chain: switching works (or answers 4902), sending
    goes to anvil from an unlocked account (or is rejected with 4001)."""

    def __init__(
        self, anvil_url: str, account: str, *, reject: bool = False, known: bool = True
    ) -> None:
        self.anvil_url = anvil_url
        self.account = account
        self.reject = reject
        self.known = known
        self.chain = "0x1"
        self.calls: list[tuple[str, Any]] = []
        self.sent: list[str] = []

    async def __call__(self, method: str, params_json: str) -> str:
        params = json.loads(params_json)
        self.calls.append((method, params))
        if method == "eth_requestAccounts":
            return json.dumps({"result": [self.account]})
        if method == "eth_chainId":
            return json.dumps({"result": self.chain})
        if method == "wallet_switchEthereumChain":
            if not self.known:
                return json.dumps({"error": {"code": 4902, "message": "Unrecognized chain ID"}})
            self.chain = params[0]["chainId"]
            return json.dumps({"result": None})
        if method == "eth_sendTransaction" and self.reject:
            return json.dumps({"error": {"code": 4001, "message": "User rejected the request."}})
        async with httpx.AsyncClient() as client:
            answer = (
                await client.post(
                    self.anvil_url,
                    json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                )
            ).json()
        if method == "eth_sendTransaction" and "result" in answer:
            self.sent.append(answer["result"])
        return json.dumps({k: v for k, v in answer.items() if k in ("result", "error")})

    async def install(self, context: BrowserContext) -> None:
        await context.expose_function("__stubRpc", self)
        await context.add_init_script(STUB)


@pytest.mark.parametrize(("viewport", "language"), [(PHONE, "en"), (DESKTOP, "zh-CN")])
async def test_pay_with_wallet_sends_the_due_amount_and_the_page_follows(
    browser: Browser,
    live: LiveCashier,
    anvil: AnvilNode,
    customer_accounts: list[LocalAccount],
    viewport: dict[str, int],
    language: str,
) -> None:
    from playwright.async_api import expect

    order = await live.order("8")
    await live.pay(order, 3_000_000, customer_accounts[1])  # 5 still due
    wallet = StubWallet(anvil.url, customer_accounts[1].address)
    context, watch = await open_page(
        browser,
        f"{live.url}/cashier/{order.id}?lang={language}",
        viewport=viewport,
        prepare=wallet.install,
    )
    page = watch.page
    try:
        await expect(page.locator("#amount")).to_have_text("5", timeout=15_000)
        pay = page.locator("#wallet-buttons button")
        await expect(pay).to_have_count(1)
        await expect(page.locator("#wallet-apps")).to_be_hidden()
        assert await axe_violations(page) == []
        size = "phone" if viewport == PHONE else "desktop"
        await live.screenshot(page, f"cashier-wallet-{size}-{language}")
        await pay.click()
        await expect(page.locator("#wallet-status")).to_contain_text("0x", timeout=15_000)
        assert len(wallet.sent) == 1
        methods = [method for method, _ in wallet.calls]
        assert methods[:3] == ["eth_requestAccounts", "eth_chainId", "wallet_switchEthereumChain"]
        assert wallet.calls[2][1] == [{"chainId": "0x7a69"}]
        (transaction,) = next(p for m, p in wallet.calls if m == "eth_sendTransaction")
        assert transaction["to"].lower() == order.token_address.lower()
        recipient = order.to_address[2:].lower().rjust(64, "0")
        assert transaction["data"] == "0xa9059cbb" + recipient + f"{5_000_000:064x}"
        receipt = await live.rpc.call("eth_getTransactionReceipt", [wallet.sent[0]])
        assert receipt["status"] == "0x1"
        # The page follows the order from the gateway's own view of the chain.
        confirming = "Payment received, confirming" if language == "en" else "已收到付款，确认中"
        await expect(page.locator("#status-text")).to_have_text(confirming, timeout=15_000)
        assert watch.errors == []
    finally:
        await context.close()


async def test_wallet_rejection_and_unknown_chain_get_calm_messages(
    browser: Browser, live: LiveCashier, anvil: AnvilNode, customer_accounts: list[LocalAccount]
) -> None:
    from playwright.async_api import expect

    order = await live.order("2")
    for wallet, expected in (
        (
            StubWallet(anvil.url, customer_accounts[2].address, reject=True),
            "You cancelled in your wallet. Nothing was sent; you can try again.",
        ),
        (
            StubWallet(anvil.url, customer_accounts[2].address, known=False),
            "Your wallet does not know Local dev chain (chain ID 31337).",
        ),
    ):
        context, watch = await open_page(
            browser, f"{live.url}/cashier/{order.id}", prepare=wallet.install
        )
        try:
            await watch.page.locator("#wallet-buttons button").click()
            await expect(watch.page.locator("#wallet-status")).to_contain_text(expected)
            await expect(watch.page.locator("#status-text")).to_have_text("Waiting for payment")
            assert wallet.sent == [] and watch.errors == []
        finally:
            await context.close()


async def test_without_a_wallet_the_page_offers_wallet_apps(
    browser: Browser, live: LiveCashier
) -> None:
    from playwright.async_api import expect

    order = await live.order("6")
    context, watch = await open_page(browser, f"{live.url}/cashier/{order.id}")
    page = watch.page
    try:
        await expect(page.locator("#wallet-buttons button")).to_have_count(0)
        await page.get_by_text("Open in a wallet app").click()
        links = page.locator(".wallet-links a")
        await expect(links).to_have_count(7)
        # The gateway's public URL (http://127.0.0.1 here), opened in MetaMask's browser.
        await expect(links.first).to_have_attribute(
            "href", f"https://link.metamask.io/dapp/127.0.0.1/cashier/{order.id}?lang=en"
        )
        await expect(page.locator("#eip681-link")).to_have_attribute(
            "href", due_uri(order, order.amount)
        )
        assert await axe_violations(page) == []
        assert watch.errors == []
    finally:
        await context.close()
