"""The cashier while a Greenfield invoice offers several payment methods: the page, its JSON,
its live stream and its QR code give no address until the customer picks one; the pick is a
same-origin POST, made once (a second different one is refused, two at once: one wins), and the
choices are escaped like any other text. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from tests.cashier.test_cashier_events import SseClient
from tests.compat.greenfield.greenfield_support import (
    GreenfieldKeys,
    create_invoice,
    greenfield,
)

from stablegate.api.context import GatewayContext
from stablegate.cashier.method_picker import MethodOption
from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import Order
from stablegate.models.order import OrderStatus
from stablegate.orders.context import OrderContext

__all__ = ["greenfield"]

SAME_ORIGIN = {"Origin": "https://pay.example.com"}


async def two_method_invoice(
    client: httpx.AsyncClient, gateway: GatewayContext, keys: GreenfieldKeys
) -> Order:
    response = await create_invoice(
        client,
        keys,
        amount="5",
        currency="USDT",
        checkout={"paymentMethods": ["USDT-DEVCHAIN", "USDT18-DEVCHAIN"]},
    )
    assert response.status_code == 200, response.text
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, response.json()["id"])
        assert order is not None
        session.expunge(order)
        return order


def shows_address(text: str, address: str) -> bool:
    """Anywhere in the text, whole or split into the page's groups, in any case."""
    flat = re.sub(r"</span>\s*<span>", "", text).lower()
    return address.lower() in flat or address.lower()[2:] in flat


async def choose(
    client: httpx.AsyncClient, order_id: str, method: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        f"/cashier/{order_id}/method?lang=en",
        content=f"method={method}",
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or SAME_ORIGIN)},
    )


async def test_no_surface_shows_an_address_before_the_pick_and_the_page_does_after(
    app: FastAPI, client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)

    page = await client.get(f"/cashier/{order.id}?lang=en")
    assert page.status_code == 200
    assert not shows_address(page.text, order.to_address)
    assert "ethereum:" not in page.text and "qr.png" not in page.text
    assert "Choose how to pay" in page.text
    assert 'name="method" value="USDT-DEVCHAIN"' in page.text
    assert 'name="method" value="USDT18-DEVCHAIN"' in page.text
    assert f'action="/cashier/{order.id}/method?lang=en"' in page.text
    assert "Pay with test wallet" not in page.text  # no dev payment to the hidden address

    public = await client.get(f"/api/v1/public/orders/{order.id}")
    assert public.status_code == 200
    assert not shows_address(public.text, order.to_address)
    view = public.json()
    assert (view["toAddress"], view["paymentUri"], view["qrCode"]) == ("", "", "")
    assert [(m["id"], m["symbol"], m["amount"]) for m in view["paymentMethods"]] == [
        ("USDT-DEVCHAIN", "USDT", "5"),
        ("USDT18-DEVCHAIN", "USDT18", "5"),
    ]

    for fmt in ("address", "eip681"):
        qr = await client.get(f"/api/v1/public/orders/{order.id}/qr.png?format={fmt}")
        assert qr.status_code == 409
        assert qr.json()["error"]["code"] == "payment_method_not_chosen"

    async with SseClient(app, f"/api/v1/public/orders/{order.id}/events") as sse:
        assert (await sse.start())["status"] == 200
        assert await sse.next_block() == "retry: 3000"
        first = await sse.next_event()
        assert first is not None and first["toAddress"] == ""
        assert len(first["paymentMethods"]) == 2
        assert not shows_address(str(first), order.to_address)

    dev_pay = await client.post(f"/cashier/{order.id}/dev-pay", headers=SAME_ORIGIN)
    assert dev_pay.status_code == 303

    chosen = await choose(client, order.id, "USDT18-DEVCHAIN")
    assert chosen.status_code == 303
    assert chosen.headers["location"] == f"/cashier/{order.id}?lang=en"
    after = await client.get(f"/cashier/{order.id}?lang=en")
    assert shows_address(after.text, order.to_address)  # the same deposit on the same chain
    assert "Choose how to pay" not in after.text and "Pay with USDT18" in after.text
    public_after = (await client.get(f"/api/v1/public/orders/{order.id}")).json()
    assert "paymentMethods" not in public_after and public_after["symbol"] == "USDT18"
    qr_after = await client.get(f"/api/v1/public/orders/{order.id}/qr.png")
    assert qr_after.status_code == 200


async def test_an_expired_invoice_offers_nothing_to_pick_and_names_no_address(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    greenfield: GreenfieldKeys,
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)
    async with session_scope(gateway.sessions) as session:
        stored = await session.get(Order, order.id)
        assert stored is not None
        stored.status = OrderStatus.EXPIRED
    page = await client.get(f"/cashier/{order.id}?lang=en")
    assert "This order has expired" in page.text
    assert page.text.count("disabled") == 2  # both choices, greyed out
    # Not "do not send funds to this address": none was shown.
    assert '<p id="state-text" class="detail state-text" hidden></p>' in page.text
    assert not shows_address(page.text, order.to_address)
    refused = await choose(client, order.id, "USDT18-DEVCHAIN")
    assert refused.status_code == 409 and "can no longer be paid" in refused.text


async def test_the_picker_speaks_chinese(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)
    page = await client.get(f"/cashier/{order.id}?lang=zh-CN")
    assert "选择付款方式" in page.text and "选择后将显示收款地址" in page.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://pay.example.com"},
        {},  # neither: not sent by the page itself
    ],
)
async def test_a_pick_from_another_origin_is_refused(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    greenfield: GreenfieldKeys,
    headers: dict[str, str],
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)
    refused = await choose(client, order.id, "USDT18-DEVCHAIN", headers={"X-Test": "1", **headers})
    assert refused.status_code == 403
    assert "must be made on the order&#39;s own page" in refused.text
    async with session_scope(gateway.sessions) as session:
        stored = await session.get(Order, order.id)
        assert stored is not None and stored.symbol == "USDT" and stored.repoint_time_ms is None


async def test_a_browser_without_origin_but_same_origin_fetch_metadata_may_pick(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)
    made = await choose(client, order.id, "USDT18-DEVCHAIN", {"Sec-Fetch-Site": "same-origin"})
    assert made.status_code == 303


async def test_a_second_different_pick_is_refused_and_the_same_one_is_harmless(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)
    assert (await choose(client, order.id, "USDT18-DEVCHAIN")).status_code == 303
    assert (await choose(client, order.id, "USDT18-DEVCHAIN")).status_code == 303
    second = await choose(client, order.id, "USDT-DEVCHAIN")
    assert second.status_code == 409
    assert "Another payment method has already been chosen" in second.text
    assert f'href="/cashier/{order.id}?lang=en"' in second.text
    unknown = await choose(client, order.id, "DAI-DEVCHAIN")
    assert unknown.status_code == 409  # already chosen answers first
    missing = await choose(client, "nosuchorder", "USDT-DEVCHAIN")
    assert missing.status_code == 404


async def test_a_malformed_pick_is_refused_politely(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)
    for body in ("", "method=", "method=A&method=B", "a=1&b=2&c=3&d=4&e=5&method=USDT-DEVCHAIN"):
        refused = await client.post(
            f"/cashier/{order.id}/method",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **SAME_ORIGIN},
        )
        assert refused.status_code == 400, body
        assert "does not offer that payment method" in refused.text


async def test_two_picks_at_once_one_wins(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)
    first, second = await asyncio.gather(
        choose(client, order.id, "USDT18-DEVCHAIN"), choose(client, order.id, "USDT-DEVCHAIN")
    )
    assert sorted([first.status_code, second.status_code]) == [303, 409]
    winner = "USDT18" if first.status_code == 303 else "USDT"
    async with session_scope(gateway.sessions) as session:
        stored = await session.get(Order, order.id)
        assert stored is not None and stored.symbol == winner
        assert stored.metadata_json["greenfield"]["paymentMethod"].startswith(winner + "-")  # type: ignore[index]


class HostilePicker:
    """Offers choices named by someone hostile, for every order."""

    def options(self, order: Order) -> list[MethodOption]:
        return [
            MethodOption('"><script>alert(1)</script>', 31337, "<img src=x onerror=alert(2)>", "1")
        ]

    async def choose(
        self, session: AsyncSession, clock: Clock, ctx: OrderContext, order_id: str, method: str
    ) -> Order:
        raise AssertionError("not called")


async def test_the_choices_are_escaped(
    app: FastAPI, client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    order = await two_method_invoice(client, gateway, greenfield)
    app.state.method_picker = HostilePicker()
    page = await client.get(f"/cashier/{order.id}?lang=en")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;img src=x onerror=alert(2)&gt;" in page.text
    public: dict[str, Any] = (await client.get(f"/api/v1/public/orders/{order.id}")).json()
    assert public["paymentMethods"][0]["id"] == '"><script>alert(1)</script>'  # JSON, as data
