"""The cashier page as HTML: what it shows, its headers, escaping, languages, 404 and dev-pay.

Runs through the ASGI app on SQLite and PostgreSQL (the ``app``/``client`` fixtures).
"""

from __future__ import annotations

import json
import re
import secrets
from html.parser import HTMLParser

import httpx
import pytest
from sqlalchemy import update
from tests.support import TEST_USDT, MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.auth.ratelimit import MemoryRateLimitBackend, RateLimiter
from stablegate.cashier.i18n import negotiate_language
from stablegate.cashier.page import dev_pay_enabled, format_time_left, safe_redirect
from stablegate.chain.registry import Chain
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import Order
from stablegate.orders.payment_request import payment_uri, qr_data_url
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.web.pages import CONTENT_SECURITY_POLICY

XSS = "<script>alert('xss')</script> & \"quotes\""
EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


async def make_order(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    *,
    description: str | None = XSS,
    redirect_url: str | None = "https://shop.example/thanks?order=1",
    amount: str = "25.5",
) -> Order:
    request = CreateOrderRequest.model_validate(
        {
            "chainId": 31337,
            "symbol": "USDT",
            "amount": amount,
            "description": description,
            "redirectUrl": redirect_url,
            "orderNo": f"merchant-secret-no-{secrets.token_hex(4)}",
            "custNo": "customer-secret-no",
            "metadata": {"internal": "merchant-only-metadata"},
        }
    )
    async with session_scope(gateway.sessions) as session:
        order, _ = await create_order(
            session, clock, gateway.orders, merchant_id=merchant.merchant_id, req=request
        )
    return order


async def set_order(gateway: GatewayContext, order_id: str, **values: object) -> None:
    async with session_scope(gateway.sessions) as session:
        await session.execute(update(Order).where(Order.id == order_id).values(**values))


class Tags(HTMLParser):
    """Collects (tag, attributes) pairs, to check what the markup really contains."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def by_id(html: str, element_id: str) -> dict[str, str | None] | None:
    return next((a for _, a in tags(html) if a.get("id") == element_id), None)


class ElementText(HTMLParser):
    """The text inside the element with an id, its child elements' text included."""

    VOID = frozenset({"br", "img", "input", "meta", "link", "wbr", "hr"})

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.found = False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id and not self.found:
            self.found, self.depth = True, 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def visible_text(html: str, element_id: str) -> str:
    parser = ElementText(element_id)
    parser.feed(html)
    assert parser.found, element_id
    return "".join(parser.parts).strip()


async def test_page_shows_what_a_customer_needs_with_a_strict_csp(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await make_order(gateway, clock, merchant)
    response = await client.get(f"/cashier/{order.id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP == CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Language"] == "en"
    html = response.text
    assert visible_text(html, "amount") == "25.5"
    assert visible_text(html, "token") == "USDT"
    assert visible_text(html, "network") == "Local dev chain"
    assert visible_text(html, "address") == order.to_address
    assert visible_text(html, "status-text") == "Waiting for payment"
    assert TEST_USDT in html
    assert "chain ID 31337" in html
    qr = by_id(html, "qr")
    assert qr is not None and qr["src"] == f"/api/v1/public/orders/{order.id}/qr.png"
    assert qr["alt"] == f"QR code of the deposit address {order.to_address}"
    # Expiry as text (UTC without JavaScript) and the time left at render time.
    assert "2026-01-01 00:15 UTC" in html
    assert visible_text(html, "countdown") == "15:00"
    # Copy buttons exist for the script to reveal; without it they stay hidden.
    copies = [a for tag, a in tags(html) if tag == "button" and "copy" in (a.get("class") or "")]
    assert {a["data-copy"] for a in copies} == {"25.5", order.to_address}
    assert all("hidden" in a for a in copies)
    # Dev chain (31337, testnet): the test-wallet button posts to dev-pay.
    forms = [a for tag, a in tags(html) if tag == "form"]
    assert forms == [
        {
            "class": "dev-pay only-pending",
            "method": "post",
            "action": f"/cashier/{order.id}/dev-pay?lang=en",
        }
    ]
    # The redirect button is there only once the order completes.
    redirect_wrap = by_id(html, "redirect-wrap")
    assert redirect_wrap is not None and "hidden" in redirect_wrap
    # The merchant's private fields never reach the customer.
    for secret in ("merchant-secret-no", "customer-secret-no", "merchant-only-metadata"):
        assert secret not in html


async def test_page_has_no_inline_script_or_style_and_escapes_merchant_text(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await make_order(gateway, clock, merchant)
    html = (await client.get(f"/cashier/{order.id}")).text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt; &amp; &#34;quotes&#34;" in html
    parsed = tags(html)
    scripts = [a for tag, a in parsed if tag == "script"]
    assert scripts and all(a.get("src", "").startswith("/cashier/static/") for a in scripts)
    assert not [tag for tag, _ in parsed if tag == "style"]
    assert not [a for _, a in parsed if "style" in a or any(k.startswith("on") for k in a)]
    # The description also rides in the script's data attribute, still escaped.
    main = by_id(html, "cashier")
    assert main is not None and json.loads(main["data-view"] or "")["description"] == XSS
    assert re.search(r'data-view="[^"<>]*"', html)
    # Static files are served with their types, cacheable by version.
    for tag, attributes in parsed:
        url = attributes.get("src") if tag == "script" else attributes.get("href")
        if url and url.startswith("/cashier/static/"):
            static = await client.get(url)
            assert static.status_code == 200
            assert static.headers["content-type"].split(";")[0] in ("text/css", "text/javascript")
            assert "immutable" in static.headers["cache-control"]
    assert (await client.get("/cashier/static/missing.js")).status_code == 404


@pytest.mark.parametrize(
    ("query", "accept_language"),
    [("?lang=zh-CN", None), ("", "zh-CN,zh;q=0.9,en;q=0.8"), ("?lang=zh-cn", "en-US")],
)
async def test_page_speaks_simplified_chinese_when_asked(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    query: str,
    accept_language: str | None,
) -> None:
    order = await make_order(gateway, clock, merchant)
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = await client.get(f"/cashier/{order.id}{query}", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "zh-CN"
    assert '<html lang="zh-CN">' in response.text
    assert visible_text(response.text, "status-text") == "等待付款"
    assert "收款地址" in response.text and "使用 USDT 支付" in response.text
    assert "Waiting for payment" not in response.text


async def test_unknown_order_is_a_friendly_404_page(client: httpx.AsyncClient) -> None:
    for path in (
        "/cashier/nosuchorder",
        "/cashier/bad%20id!",
        "/cashier/abc%0A",
        f"/cashier/{'x' * 65}",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["Content-Security-Policy"] == EXPECTED_CSP
        assert "Order not found" in response.text
    chinese = await client.get("/cashier/nosuchorder", headers={"Accept-Language": "zh"})
    assert chinese.status_code == 404 and "未找到订单" in chinese.text
    # The API twin answers in the API's error shape.
    events = await client.get("/api/v1/public/orders/nosuchorder/events")
    assert events.status_code == 404
    assert events.json()["error"]["code"] == "not_found"


async def test_states_confirming_completed_expired(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await make_order(gateway, clock, merchant)
    await set_order(
        gateway, order.id, status="confirming", pending_amount=25_500_000, confirmations=1
    )
    html = (await client.get(f"/cashier/{order.id}")).text
    assert 'data-status="confirming"' in html
    assert visible_text(html, "status-text") == "Payment received, confirming"
    assert visible_text(html, "confirmations") == "Confirmations: 1 of 2"
    assert visible_text(html, "received") == "Received 25.5 of 25.5 USDT"
    assert 'http-equiv="refresh"' in html  # no-JS pages refresh until a final state

    await set_order(gateway, order.id, status="completed", pending_amount=0, paid_amount=25_500_000)
    html = (await client.get(f"/cashier/{order.id}")).text
    assert visible_text(html, "status-text") == "Payment complete"
    link = by_id(html, "redirect")
    assert link is not None and link["href"] == "https://shop.example/thanks?order=1"
    wrap = by_id(html, "redirect-wrap")
    assert wrap is not None and "hidden" not in wrap
    assert 'http-equiv="refresh"' not in html
    assert "<form" not in html  # no test-wallet payment once paid

    other = await make_order(gateway, clock, merchant, redirect_url=None, amount="1")
    await set_order(gateway, other.id, status="expired")
    html = (await client.get(f"/cashier/{other.id}")).text
    assert visible_text(html, "status-text") == "This order has expired"
    assert "Do not send funds to this address any more." in html


async def test_an_order_priced_in_fiat_shows_its_price_beside_the_token_amount(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await make_order(gateway, clock, merchant, amount="10")
    # The row as order creation stores a fiat-priced order: 72 CNY at 7.2 CNY per USDT.
    await set_order(
        gateway,
        order.id,
        fiat_amount="72",
        fiat_currency="CNY",
        rate="7.2",
        rate_source="fixed",
        rate_time_ms=clock.now_ms(),
    )
    html = (await client.get(f"/cashier/{order.id}?lang=en")).text
    assert visible_text(html, "fiat-price") == "72.00 CNY = 10 USDT at 7.2"
    assert visible_text(html, "amount") == "10"
    main = by_id(html, "cashier")
    assert main is not None
    shown = json.loads(main["data-view"] or "")
    assert (shown["fiatAmount"], shown["currency"], shown["rate"]) == ("72", "CNY", "7.2")
    html = (await client.get(f"/cashier/{order.id}?lang=zh-CN")).text
    assert visible_text(html, "fiat-price") == "72.00 CNY = 10 USDT（汇率 7.2）"

    # Paid: the price stays, beside the amount paid.
    await set_order(gateway, order.id, status="completed", paid_amount=10_000_000)
    html = (await client.get(f"/cashier/{order.id}")).text
    assert visible_text(html, "fiat-price") == "72.00 CNY = 10 USDT at 7.2"

    # A currency without minor units, a price with more decimals than the currency's.
    await set_order(gateway, order.id, fiat_amount="1500", fiat_currency="JPY", rate="150")
    assert visible_text((await client.get(f"/cashier/{order.id}")).text, "fiat-price") == (
        "1500 JPY = 10 USDT at 150"
    )
    await set_order(gateway, order.id, fiat_amount="71.999", fiat_currency="CNY", rate="7.1999")
    assert visible_text((await client.get(f"/cashier/{order.id}")).text, "fiat-price") == (
        "71.999 CNY = 10 USDT at 7.1999"
    )


async def test_an_order_in_tokens_shows_no_fiat_price(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await make_order(gateway, clock, merchant)
    html = (await client.get(f"/cashier/{order.id}")).text
    assert by_id(html, "fiat-price") is None
    main = by_id(html, "cashier")
    assert main is not None
    shown = json.loads(main["data-view"] or "")
    assert not {"fiatAmount", "currency", "rate", "rateSource", "rateTime"} & set(shown)


async def test_qr_mode_switch_works_as_plain_links(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await make_order(gateway, clock, merchant)
    html = (await client.get(f"/cashier/{order.id}?qr=eip681&lang=en")).text
    qr = by_id(html, "qr")
    assert qr is not None
    # Drawn into the page for the amount due (here all of it), so it is never a stale image.
    assert qr["src"] == qr_data_url(payment_uri(order))
    assert qr["alt"] == f"QR code of a payment request for 25.5 USDT to {order.to_address}"
    links = [a for tag, a in tags(html) if tag == "a" and a.get("data-mode")]
    assert [(a["data-mode"], a.get("aria-current")) for a in links] == [
        ("address", None),
        ("eip681", "true"),
    ]
    assert links[0]["href"] == f"/cashier/{order.id}?lang=en&qr=address"
    # An unknown mode falls back to the plain address.
    html = (await client.get(f"/cashier/{order.id}?qr=bogus")).text
    qr = by_id(html, "qr")
    assert qr is not None and qr["src"] == f"/api/v1/public/orders/{order.id}/qr.png"


async def test_dev_pay_without_a_node_redirects_back_with_a_notice(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    # The test chain's RPC URL points at a closed port: the payment fails, politely.
    order = await make_order(gateway, clock, merchant)
    response = await client.post(f"/cashier/{order.id}/dev-pay?lang=zh-CN")
    assert response.status_code == 303
    assert response.headers["location"] == f"/cashier/{order.id}?lang=zh-CN&notice=dev_pay_failed"
    page = await client.get(response.headers["location"])
    assert "测试付款失败" in page.text
    missing = await client.post("/cashier/nosuchorder/dev-pay")
    assert missing.status_code == 404 and "Order not found" in missing.text


async def test_over_the_public_limit_the_page_says_so_in_html(
    client: httpx.AsyncClient, gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await make_order(gateway, clock, merchant)
    gateway.limiter = RateLimiter(MemoryRateLimitBackend(clock), public_per_minute=2)
    statuses = [(await client.get(f"/cashier/{order.id}")).status_code for _ in range(2)]
    assert statuses == [200, 200]
    limited = await client.get(f"/cashier/{order.id}?lang=zh-CN")
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/html")
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.headers["Content-Security-Policy"] == EXPECTED_CSP
    assert "请求过多" in limited.text
    # The event stream shares the same per-IP budget (and answers like the API).
    events = await client.get(f"/api/v1/public/orders/{order.id}/events")
    assert events.status_code == 429 and events.json()["error"]["code"] == "rate_limited"
    # Static files are not counted.
    assert (await client.get("/cashier/static/cashier.css")).status_code == 200


def test_dev_pay_is_only_for_the_local_dev_chain() -> None:
    dev = Chain(31337, "Local dev chain", "devchain", 2, 1, testnet=True, rpc_urls=("http://x",))
    assert dev_pay_enabled(dev)
    assert not dev_pay_enabled(Chain(31337, "x", "x", 2, 1, testnet=False, rpc_urls=("http://x",)))
    assert not dev_pay_enabled(Chain(31337, "x", "x", 2, 1, testnet=True))
    assert not dev_pay_enabled(
        Chain(11155111, "Sepolia", "sepolia", 2, 12, testnet=True, rpc_urls=("http://x",))
    )
    assert not dev_pay_enabled(None)


def test_redirect_urls_and_languages_and_time_left() -> None:
    assert safe_redirect("https://shop.example/ok") == "https://shop.example/ok"
    assert safe_redirect("HTTP://shop.example") == "HTTP://shop.example"
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "//evil.example",
        "https:///x",
        None,
        "",
    ):
        assert safe_redirect(bad) is None
    assert negotiate_language(None, None) == "en"
    assert negotiate_language("fr", "fr-FR, zh-TW;q=0.5") == "zh-CN"
    assert negotiate_language(None, "en;q=0.4, zh;q=0.8") == "zh-CN"
    assert negotiate_language(None, "zh;q=0, de") == "en"
    assert negotiate_language("EN", "zh-CN") == "en"
    assert negotiate_language(None, "zh;q=abc, en") == "en"
    assert format_time_left(900_000) == "15:00"
    assert format_time_left(3_725_000) == "1:02:05"
    assert format_time_left(-5) == "00:00"
