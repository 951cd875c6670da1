"""A key's own page in real headless Chromium (the harness of test_dashboard_browser.py): the
keys list with last use, a wrong and a right public key (the confirmation before the key turns
V1 only), signed reads, a wrong and a right IP allowlist, the page in Chinese. axe-core finds
nothing on any of them; each is captured at 1280x800 and 390x844 (``dashboard-key-*.png``, into
docs/screenshots/ with STABLEGATE_SAVE_SCREENSHOTS=1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from stablegate_client import generate_key_pair
from tests.cashier.browser_support import DESKTOP, browser, chromium
from tests.dashboard.dashboard_support import PASSWORD
from tests.dashboard.test_dashboard_browser import LiveDashboard, live

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="session")]
__all__ = ["browser", "chromium", "live"]  # fixtures used by the tests below

EMAIL = "owner@tea.example"


async def _signed_up_and_in(page: Page, live: LiveDashboard) -> None:
    from playwright.async_api import expect

    await page.goto(f"{live.url}/dashboard/signup")
    await page.get_by_label("Business name").fill("Tea House")
    await page.get_by_label("Email address").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Account created")).to_be_visible()
    await page.goto(live.reachable(live.mail.link_for(EMAIL)))
    await page.get_by_role("button", name="Confirm my address").click()
    await page.get_by_role("link", name="Log in").click()
    await page.get_by_label("Email address").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{live.url}/dashboard/keys")


async def test_a_keys_own_page(browser: Browser, live: LiveDashboard) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(viewport=DESKTOP, locale="en-US")  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "status of 400" not in m.text else None
        ),
    )
    try:
        await _signed_up_and_in(page, live)
        await page.get_by_label("Label (optional)").fill("Till in the front shop")
        await page.get_by_role("button", name="Create key").click()
        api_key = (await page.locator("#api-key").inner_text()).strip()
        async with httpx.AsyncClient(base_url=live.url) as api:
            read = await api.get(
                "/api/v1/payment/contractPayment", headers={"BlockATM-API-Key": api_key}
            )
            assert read.status_code == 200, read.text
        await page.get_by_role("link", name="Back to API keys").click()
        await page.get_by_label("Label (optional)").fill("Warehouse")
        await page.get_by_role("button", name="Create key").click()
        await page.get_by_role("link", name="Back to API keys").click()
        await expect(page.get_by_role("columnheader", name="Last used")).to_be_visible()
        await expect(page.get_by_text("Never")).to_be_visible()
        await live.capture(page, "key-list")

        await page.get_by_role("link", name=f"Settings of key {api_key[:10]}…").click()
        await expect(
            page.get_by_role("heading", name=f"API key {api_key[:10]}…", exact=True)
        ).to_be_visible()
        await expect(page.get_by_text("V2 (HMAC with the secret key)")).to_be_visible()
        await live.capture(page, "key-page")

        await page.get_by_label("Public key (PEM)").fill("-----BEGIN PUBLIC KEY-----\nnope")
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Register public key").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "This is not an ECDSA P-256 public key in PEM format."
        )
        await live.capture(page, "key-pem-error")

        _private, public = generate_key_pair()
        await page.get_by_label("Public key (PEM)").fill(public.decode())
        dialogs: list[str] = []

        async def accept(dialog: object) -> None:
            dialogs.append(dialog.message)  # type: ignore[attr-defined]
            await dialog.accept()  # type: ignore[attr-defined]

        page.once("dialog", accept)
        await page.get_by_role("button", name="Register public key").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Public key registered. This key accepts V1 signatures only."
        )
        assert dialogs and "only V1 signatures are accepted" in dialogs[0]
        await expect(page.get_by_text("V1 (ECDSA P-256) only")).to_be_visible()

        await page.get_by_role("button", name="Allow reads with the key alone").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Reads with this key may now be made with the key alone."
        )
        await page.get_by_role("button", name="Require signed reads").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Reads with this key now need a signature."
        )

        await page.get_by_label("Addresses and networks").fill("203.0.113.7\nshop.example")
        await page.get_by_role("button", name="Save allowlist").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "“shop.example” is not an IP address or network (CIDR)."
        )
        await live.capture(page, "key-ip-error")

        await page.get_by_label("Addresses and networks").fill(
            "203.0.113.7\n198.51.100.0/24\n2001:db8:1::/48"
        )
        await page.get_by_role("button", name="Save allowlist").click()
        await expect(page.get_by_role("status")).to_have_text(
            "IP allowlist saved: only the listed addresses may use this key."
        )
        await expect(page.get_by_label("Addresses and networks")).to_have_value(
            "203.0.113.7/32\n198.51.100.0/24\n2001:db8:1::/48"
        )
        await live.capture(page, "key-configured")

        # The test server's peer (127.0.0.1) is not on the list: refused at once.
        async with httpx.AsyncClient(base_url=live.url) as api:
            refused = await api.get(
                "/api/v1/payment/contractPayment", headers={"BlockATM-API-Key": api_key}
            )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "ip_not_allowed"

        await page.goto(page.url.split("?")[0] + "?lang=zh-CN")
        await expect(page.get_by_role("heading", name="IP 白名单")).to_be_visible()
        await live.capture(page, "key-configured-zh-CN")

        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name=f"撤销密钥 {api_key[:10]}…").click()
        await expect(page.get_by_role("status")).to_have_text(f"密钥 {api_key[:10]}… 已撤销。")
        await page.get_by_role("link", name=f"密钥 {api_key[:10]}… 的详情").click()
        await expect(page.get_by_text("此密钥已撤销")).to_be_visible()
        await live.capture(page, "key-page-revoked-zh-CN")
        assert errors == []
    finally:
        await context.close()
