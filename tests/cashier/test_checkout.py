"""The cases the cashier explains, the support contact and logo rules, the merchant fields as
HTML (inert whatever they hold) and the CSP with a logo."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.cashier.test_cashier_page import EXPECTED_CSP, XSS, by_id, make_order, tags
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.cashier import page as cashier_page
from stablegate.cashier.checkout import (
    checkout_state,
    fiat_text,
    logo_origin,
    logo_source,
    support_link,
)
from stablegate.clock import FakeClock


def view(status: str, paid: str = "0", pending: str = "0", **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "decimals": 6,
        "amount": "20",
        "paidAmount": paid,
        "pendingAmount": pending,
        **extra,
    }


@pytest.mark.parametrize(
    ("case", "state"),
    [
        (view("pending"), "pending"),
        (view("pending", paid="10"), "partial"),
        (view("pending", pending="0.5"), "partial"),
        (view("confirming", pending="20"), "confirming"),
        (view("completed", paid="20"), "paid"),
        (view("completed", paid="40"), "paid_over"),
        (view("completed", paid="20", exceptions=["overpaid"]), "paid_over"),
        (view("expired"), "expired"),
        (view("expired", paid="5"), "expired_partial"),
        (view("expired", paid="20"), "late"),
        (view("expired", exceptions=["paid_late"]), "late"),
        (view("cancelled"), "cancelled"),
    ],
)
def test_checkout_state(case: dict[str, Any], state: str) -> None:
    assert checkout_state(case) == state


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("72", "CNY", "72.00"),
        ("129.9", "EUR", "129.90"),
        ("0.5", "USD", "0.50"),
        ("1500", "JPY", "1500"),
        ("1500.5", "JPY", "1500.5"),  # never rounded: the price as the merchant gave it
        ("71.999", "CNY", "71.999"),
        ("12345678901234567.12345678", "KRW", "12345678901234567.12345678"),
    ],
)
def test_fiat_amounts_show_at_least_the_currency_minor_unit(
    amount: str, currency: str, shown: str
) -> None:
    assert fiat_text(amount, currency) == shown


def test_support_contact_links_only_mail_and_http() -> None:
    assert support_link("help@shop.example") == {
        "text": "help@shop.example",
        "href": "mailto:help@shop.example",
    }
    assert support_link("https://shop.example/help")["href"] == "https://shop.example/help"  # type: ignore[index]
    for text in ("javascript:alert(1)", "Call +1 555 0100", "data:text/html,<b>x</b>"):
        assert support_link(text) == {"text": text, "href": ""}
    assert support_link(None) is None and support_link("") is None


def test_logo_is_https_or_an_image_data_url() -> None:
    assert logo_source("https://cdn.shop.example/logo.png") == "https://cdn.shop.example/logo.png"
    assert logo_origin("https://cdn.shop.example/logo.png") == "https://cdn.shop.example"
    assert logo_source("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"
    assert logo_origin("data:image/png;base64,AAAA") is None
    for bad in ("http://shop.example/logo.png", "javascript:alert(1)", "data:text/html,x", None):
        assert logo_source(bad) is None and logo_origin(bad) is None


async def test_merchant_fields_render_inert(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = await make_order(gateway, clock, merchant)
    real = cashier_page.cashier_order_view

    def with_merchant(*args: Any) -> dict[str, Any]:
        return real(*args) | {
            "merchant": {"name": XSS, "logoUrl": "javascript:alert(1)", "supportContact": XSS}
        }

    monkeypatch.setattr(cashier_page, "cashier_order_view", with_merchant)
    response = await client.get(f"/cashier/{order.id}")
    html = response.text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in html
    assert all(tag != "img" or a.get("id") == "qr" for tag, a in tags(html) if tag == "img")
    assert not any((a.get("href") or "").lower().startswith("javascript") for _, a in tags(html))
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP

    def with_logo(*args: Any) -> dict[str, Any]:
        return real(*args) | {
            "merchant": {
                "name": "Shop",
                "logoUrl": "https://cdn.shop.example/logo.png",
                "supportContact": "help@shop.example",
            }
        }

    monkeypatch.setattr(cashier_page, "cashier_order_view", with_logo)
    response = await client.get(f"/cashier/{order.id}")
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP.replace(
        "img-src 'self' data:", "img-src 'self' data: https://cdn.shop.example"
    )
    assert by_id(response.text, "support-top") == {
        "id": "support-top",
        "href": "mailto:help@shop.example",
        "rel": "noopener noreferrer",
    }
