"""The browser harness of the cashier's Chromium tests: Debian's /usr/bin/chromium driven by
Playwright, a real gateway (uvicorn in a thread, SQLite) with the session's anvil node and a
real watcher beside it, QR decoding of what is on screen (zxing-cpp), and axe-core run in the
page under its real CSP.

Test modules import the fixtures they use (``browser``, ``chromium``, ``live``, ``module_dir``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from eth_account.signers.local import LocalAccount
from tests.chain_files import dev_tokens_of, write_chains_file
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
from stablegate.orders.context import OrderContext
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.secret_box import load_secret_box
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Locator, Page

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
DESKTOP = {"width": 1280, "height": 800}

PAYOUT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"


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
    viewport: dict[str, int] = PHONE,
    prepare: Callable[[BrowserContext], Awaitable[None]] | None = None,
) -> tuple[BrowserContext, PageWatch]:
    phone = viewport["width"] < 800
    context = await browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        permissions=permissions or [],
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
        java_script_enabled=javascript,
        locale=locale,
    )
    if prepare is not None:
        await prepare(context)  # e.g. a stub wallet, before the page's scripts run
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
    usdc: str
    shots: Path
    box: Any = None

    async def merchant(self, name: str) -> str:
        """Another merchant (e.g. with a hostile name), its id."""
        async with session_scope(self.sessions) as session:
            created = await create_merchant(
                session, self.box, self.clock, name=name, payout_address=PAYOUT, chain_ids=[31337]
            )
        return created.merchant_id

    async def order(self, amount: str, merchant_id: str | None = None, **fields: object) -> Order:
        header = await fetch_header(self.rpc, "latest")
        assert header is not None
        self.clock.set_ms(header.time_ms)  # "now" in chain time: expiry follows chain blocks
        request = CreateOrderRequest.model_validate(
            {"chainId": 31337, "symbol": "USDT", "amount": amount, **fields}
        )
        async with session_scope(self.sessions) as session:
            order, _ = await create_order(
                session,
                self.clock,
                self.orders,
                merchant_id=merchant_id or self.merchant_id,
                req=request,
            )
        return order

    async def price(self, order: Order, **price: str) -> None:
        """Gives an order the price columns of one created in fiat (fiat_amount, currency, rate,
        rate_source), the rate's time being now."""
        async with session_scope(self.sessions) as session:
            stored = await session.get(Order, order.id)
            assert stored is not None
            stored.fiat_amount, stored.fiat_currency = price["fiat_amount"], price["currency"]
            stored.rate, stored.rate_source = price["rate"], price["rate_source"]
            stored.rate_time_ms = self.clock.now_ms()

    async def pay(
        self, order: Order, units: int, customer: LocalAccount, token: str | None = None
    ) -> None:
        call = tether_token().encode_call("transfer", order.to_address, units)
        await transact(self.rpc, customer, token or self.usdt, call)

    async def wait_status(self, order: Order, status: str, seconds: float = 60) -> None:
        """Until the gateway's public view of the order has the status (the watcher is slower
        when the machine is busy)."""
        import httpx

        async with httpx.AsyncClient() as client:
            for _ in range(int(seconds * 5)):
                answer = await client.get(f"{self.url}/api/v1/public/orders/{order.id}")
                if answer.json()["status"] == status:
                    return
                await asyncio.sleep(0.2)
        raise AssertionError(f"order {order.id} never became {status}")

    async def expire(self, order: Order) -> None:
        """Moves chain time past the order's expiry and finalises it (the watcher expires the
        order once a finalized block is past its expireTime)."""
        header = await fetch_header(self.rpc, "latest")
        assert header is not None
        seconds = (order.expire_time_ms - header.time_ms) // 1000 + 5
        await self.rpc.call("evm_increaseTime", [seconds])
        await self.mine(70)

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
    # USDC is a registry token too, so a USDC transfer to a USDT order is a wrong-token payment.
    chains = write_chains_file(
        module_dir / "chains.toml",
        [anvil.url],
        factory=gateway_contracts.factory,
        implementation=gateway_contracts.implementation,
        tokens=dev_tokens_of(dev_tokens, "USDT", "USDC"),
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
                dev_tokens["USDC"],
                shots,
                load_secret_box(settings),
            )
    finally:
        stop.set()
        await asyncio.wait_for(watching, timeout=10)
        await watcher_rpc.aclose()
        await engine.dispose()
        assert await rpc.call("evm_revert", [snapshot]) is True


# -- accessibility: axe-core evaluated in the page (CDP, so the page's CSP stays on) ------------


async def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now: ``id: targets`` lines."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text())
    found = await page.evaluate(
        """axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
          .then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' '))
            .join(', ')))"""
    )
    return list(found)
