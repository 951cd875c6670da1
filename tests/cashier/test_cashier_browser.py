"""The cashier page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Against a real gateway (uvicorn in a thread, SQLite), the session's anvil node and a real watcher
running beside it: the page streams and polls the real API while the test pays on chain.
Screenshots go to the test's tmp dir, and to docs/screenshots/ with STABLEGATE_SAVE_SCREENSHOTS=1.

Chromium comes from `scripts/install_chromium.sh` (make install). Without it these tests skip,
or fail when CI=true or STABLEGATE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from eth_account.signers.local import LocalAccount
from tests.cashier.stream_support import RawStream
from tests.chain_files import write_dev_chains_file
from tests.conftest import unavailable

from stablegate.api.app import create_app
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.blocks import fetch_header
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.chain.registry import load_registry
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models import Order
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import OrderContext, create_order
from stablegate.orders.view import payment_uri
from stablegate.secret_box import load_secret_box
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Locator, Page

pytestmark = [pytest.mark.anvil, pytest.mark.asyncio(loop_scope="session")]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}
PAYOUT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
REPO = Path(__file__).resolve().parents[2]


# -- QR decoding: Chromium's PNG screenshot -> grayscale -> zxing-cpp ----------------------------


def png_to_gray(data: bytes) -> tuple[bytes, int, int]:
    """Grayscale pixels of an 8-bit, non-interlaced PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, compressed = 8, b""
    width = height = color = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (0, 2, 4, 6)
        elif kind == b"IDAT":
            compressed += body
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    raw = zlib.decompress(compressed)
    stride = width * channels
    previous = bytearray(stride)
    gray = bytearray(width * height)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + predictor) & 255
        for x in range(width):
            pixel = line[x * channels : (x + 1) * channels]
            gray[y * width + x] = (
                pixel[0]
                if channels <= 2
                else (pixel[0] * 299 + pixel[1] * 587 + pixel[2] * 114) // 1000
            )
        previous = line
    return bytes(gray), width, height


def decode_qr(png: bytes) -> list[str]:
    import zxingcpp

    gray, width, height = png_to_gray(png)
    return [
        code.text for code in zxingcpp.read_barcodes(memoryview(gray).cast("B", (height, width)))
    ]


async def shown_qr(image: Locator) -> list[str]:
    """What the QR image on screen decodes to, once the browser has loaded and painted it."""
    from playwright.async_api import expect

    # Locator checks run outside the page's world: the strict CSP forbids eval in it.
    await expect(image).to_have_js_property("complete", True)
    await expect(image).not_to_have_js_property("naturalWidth", 0)
    return decode_qr(await image.screenshot())


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        import playwright.async_api  # noqa: F401
        import zxingcpp  # noqa: F401
    except ImportError as exc:
        unavailable("Playwright or zxing-cpp", f"{exc}; run make install")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable("Chromium", f"{CHROMIUM} is missing; run scripts/install_chromium.sh")
    return CHROMIUM


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    # Playwright gives every launch a fresh temporary user-data dir and removes it on close.
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class PageWatch:
    """A page with its console errors and uncaught exceptions collected."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


async def open_page(
    browser: Browser,
    url: str,
    *,
    javascript: bool = True,
    locale: str = "en-US",
    permissions: list[str] | None = None,
) -> tuple[BrowserContext, PageWatch]:
    context = await browser.new_context(
        viewport=PHONE,
        permissions=permissions or [],
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        java_script_enabled=javascript,
        locale=locale,
    )
    page = await context.new_page()
    watch = PageWatch(page)
    page.on(
        "console",
        lambda message: watch.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
    page.on("request", lambda request: watch.requests.append(request.url))
    response = await page.goto(url)
    assert response is not None and response.status == 200
    return context, watch


# -- the gateway, the chain and the watcher ---------------------------------------------------


@dataclass
class LiveCashier:
    url: str
    rpc: RpcClient
    sessions: Any
    clock: FakeClock
    orders: OrderContext
    merchant_id: str
    usdt: str
    shots: Path

    async def order(self, amount: str, **fields: object) -> Order:
        header = await fetch_header(self.rpc, "latest")
        assert header is not None
        self.clock.set_ms(header.time_ms)  # "now" in chain time: expiry follows chain blocks
        request = CreateOrderRequest.model_validate(
            {"chainId": 31337, "symbol": "USDT", "amount": amount, **fields}
        )
        async with session_scope(self.sessions) as session:
            order, _ = await create_order(
                session, self.clock, self.orders, merchant_id=self.merchant_id, req=request
            )
        return order

    async def pay(self, order: Order, units: int, customer: LocalAccount) -> None:
        call = tether_token().encode_call("transfer", order.to_address, units)
        await transact(self.rpc, customer, self.usdt, call)

    async def mine(self, blocks: int) -> None:
        await self.rpc.call("anvil_mine", [hex(blocks)])

    async def screenshot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        if os.environ.get("STABLEGATE_SAVE_SCREENSHOTS") == "1":
            target = REPO / "docs" / "screenshots"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.name)
        return path


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cashier")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(
    module_dir: Path,
    anvil: AnvilNode,
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
) -> AsyncIterator[LiveCashier]:
    from tests.support import LiveServer

    snapshot = await rpc.call("evm_snapshot", [])
    chains = write_dev_chains_file(
        module_dir / "chains.toml", anvil.url, gateway_contracts, dev_tokens
    )
    settings = Settings(
        data_dir=module_dir / "data",
        database_url=f"sqlite+aiosqlite:///{module_dir / 'gateway.db'}",
        chains_file=chains,
        secret_key=Fernet.generate_key().decode(),
        public_url="http://127.0.0.1",
        public_per_minute=100_000,
        live_streams_per_ip=3,  # the refused-stream test fills it from the test's own address
        _env_file=None,  # type: ignore[call-arg]
    )
    header = await fetch_header(rpc, "latest")
    assert header is not None
    clock = FakeClock(header.time_ms)
    engine = make_engine(settings.effective_database_url)
    await upgrade(engine)
    sessions = make_sessionmaker(engine)
    async with session_scope(sessions) as session:
        merchant = await create_merchant(
            session,
            load_secret_box(settings),
            clock,
            name="Browser Shop",
            payout_address=PAYOUT,
            chain_ids=[31337],
        )
    registry = load_registry(chains)
    orders = OrderContext(registry, settings.public_url, settings.max_order_amount)
    chain = registry.get(31337)
    assert chain is not None and chain.testnet
    watcher_rpc = RpcClient([anvil.url])
    watcher = ChainWatcher(
        chain, sessions, clock, watcher_rpc, orders, options=WatcherOptions(poll_interval=0.1)
    )
    stop = asyncio.Event()
    watching = asyncio.create_task(watcher.run_forever(stop))
    shots = module_dir / "screenshots"
    shots.mkdir()
    try:
        with LiveServer(create_app(settings, clock=clock, migrate=False)) as server:
            yield LiveCashier(
                server.url,
                rpc,
                sessions,
                clock,
                orders,
                merchant.merchant_id,
                dev_tokens["USDT"],
                shots,
            )
    finally:
        stop.set()
        await asyncio.wait_for(watching, timeout=10)
        await watcher_rpc.aclose()
        await engine.dispose()
        assert await rpc.call("evm_revert", [snapshot]) is True


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
        await expect(qr).to_have_attribute(
            "src", f"/api/v1/public/orders/{order.id}/qr.png?format=eip681"
        )
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
        await expect(qr).to_have_attribute(
            "src", f"/api/v1/public/orders/{order.id}/qr.png?format=eip681"
        )
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
