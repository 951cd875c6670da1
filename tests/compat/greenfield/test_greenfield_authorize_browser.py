"""The Greenfield authorization in headless Chromium, as the WooCommerce plugin drives it: the
shop sends the merchant to ``/api-keys/authorize``, the merchant logs in, approves, and the
browser posts the new key to the shop by itself. The shop here is a local server that checks
what the plugin checks (one store, the required permissions) and then calls
``/api/v1/api-keys/current`` with the key. axe-core finds nothing on the dashboard's pages; the
consent page is captured (``dashboard-greenfield-authorize-*.png``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
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

REQUIRED = {
    "btcpay.store.canviewinvoices",
    "btcpay.store.cancreateinvoice",
    "btcpay.store.canviewstoresettings",
    "btcpay.store.canmodifyinvoices",
}
OPTIONAL = {
    "btcpay.store.cancreatenonapprovedpullpayments",
    "btcpay.store.webhooks.canmodifywebhooks",
}


class Shop:
    """The shop's side: what arrives at its settings callback."""

    def __init__(self) -> None:
        self.received: list[dict[str, list[str]]] = []

    async def callback(self, request: Request) -> Response:
        form = await request.form()
        self.received.append({key: form.getlist(key) for key, _ in form.multi_items()})
        return HTMLResponse("<!doctype html><title>Shop</title><h1>Connected to BTCPay</h1>")


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[Shop, str]]:
    receiver = Shop()
    app = Starlette(routes=[Route("/wc-callback", receiver.callback, methods=["POST"])])
    with LiveServer(app) as server:
        yield receiver, server.url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveConsole]:
    folder = tmp_path_factory.mktemp("greenfield")
    settings = await seeded_settings(folder)
    shots = folder / "screenshots"
    shots.mkdir()
    with LiveServer(create_app(settings, migrate=False)) as server:
        yield LiveConsole(server.url, shots, prefix="dashboard")


async def test_the_shop_gets_a_key_for_its_one_store(
    browser: Browser, live: LiveConsole, shop: tuple[Shop, str]
) -> None:
    from playwright.async_api import expect

    receiver, shop_url = shop
    query = [("permissions", p) for p in sorted(REQUIRED | OPTIONAL)]
    query += [("applicationName", "WooCommerce"), ("strict", "true"), ("selectiveStores", "true")]
    query += [("redirect", f"{shop_url}/wc-callback")]
    context = await browser.new_context(viewport=DESKTOP, locale="en-US")  # type: ignore[arg-type]
    page = await context.new_page()
    try:
        await page.goto(f"{live.url}/api-keys/authorize?{urlencode(query)}")
        await page.get_by_label("Email address").fill(OWNER)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("heading", name="Connect a shop")).to_be_visible()
        await expect(page.locator("#gf-who")).to_have_text(
            "WooCommerce asks to connect to your store Card Shop with these permissions."
        )
        await live.capture(page, "greenfield-authorize")
        await page.get_by_label("Your store's default currency").select_option("EUR")
        await page.get_by_role("button", name="Approve").click()
        await expect(page.get_by_role("heading", name="Connected to BTCPay")).to_be_visible()
    finally:
        await context.close()

    [posted] = receiver.received
    [api_key] = posted["apiKey"]
    permissions = posted["permissions[]"]
    # The plugin's own checks: every permission "<name>:<storeId>" of one store, and the
    # required set exactly once the optional ones are set aside.
    stores = {p.split(":")[1] for p in permissions}
    assert len(stores) == 1 and all(len(p.split(":")) == 2 for p in permissions)
    assert {p.split(":")[0] for p in permissions} - OPTIONAL == REQUIRED
    current = await asyncio.to_thread(
        httpx.get,
        f"{live.url}/api/v1/api-keys/current",
        headers={"Authorization": f"token {api_key}"},
    )
    assert current.status_code == 200
    assert sorted(current.json()["permissions"]) == sorted(permissions)
