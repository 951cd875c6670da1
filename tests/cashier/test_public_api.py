"""The public order view (``GET /api/v1/public/orders/{id}``, the live stream and the page's
embedded view) for partial, pending, overpaid, late and wrong-token orders, with the payments
recorded, finalised and settled by the real payments service, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.api.test_orders_api import CREATE, post
from tests.chain_files import write_chains_file
from tests.support import TEST_USDT, TEST_USDT18, MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.cashier.live import database_views
from stablegate.chain.evm.transfers import TransferLog
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import set_policy
from stablegate.models import ChainState, Order
from stablegate.orders.payment_request import qr_data_url
from stablegate.payments.service import (
    ObservedTransfer,
    finalize_up_to,
    record_transfers,
    settle_orders,
)

EXPLORER = "https://explorer.example"
PAYER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
OUTSIDE_TOKEN = "0x000000000000000000000000000000000000bEEF"
USDT = 10**6


@pytest.fixture
def chains_file(tmp_path: Path) -> Path:
    tokens = [("USDT", TEST_USDT, 6), ("USDT18", TEST_USDT18, 18)]
    return write_chains_file(tmp_path / "chains.toml", tokens=tokens, explorer_url=EXPLORER)


async def create(client: httpx.AsyncClient, signer: Signer, amount: str = "20") -> dict[str, Any]:
    body = {"chainId": "31337", "symbol": "USDT", "amount": amount}
    response = await post(client, signer, CREATE, body)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


class Chain:
    """Transfers to an order through record_transfers, finalize_up_to and settle_orders, as the
    watcher calls them, on made-up blocks."""

    def __init__(self, app: FastAPI, gateway: GatewayContext, clock: FakeClock) -> None:
        self.app, self.gateway, self.clock = app, gateway, clock
        chain = gateway.registry.get(31337)
        assert chain is not None
        self.chain = chain
        self.block = 100

    async def pay(
        self,
        order_id: str,
        amount: int,
        *,
        token: str = TEST_USDT,
        final: bool = True,
        block_time_ms: int | None = None,
    ) -> str:
        self.block += 1
        tx_hash = f"0x{self.block:064x}"
        block_hash = f"0x{self.block + 10**6:064x}"
        at = self.clock.now_ms() if block_time_ms is None else block_time_ms
        async with session_scope(self.gateway.sessions) as session:
            order = await session.get(Order, order_id)
            assert order is not None
            transfer = TransferLog(
                token=token,
                sender=PAYER,
                recipient=order.to_address,
                amount=amount,
                tx_hash=tx_hash,
                log_index=0,
                block_number=self.block,
                block_hash=block_hash,
            )
            seen = await record_transfers(
                session,
                self.clock,
                self.chain,
                [ObservedTransfer(transfer, 0, at, order_id)],
                final_height=self.block - 1,
            )
            touched = {order_id}
            if final:
                touched |= await finalize_up_to(
                    session, self.clock, self.chain.id, self.block, {self.block: block_hash}
                )
            await settle_orders(
                session,
                self.clock,
                self.app.state.order_context,
                touched,
                final_time_ms=at,
                newly_seen=seen,
            )
            head = await session.get(ChainState, self.chain.id)
            if head is None:
                head = ChainState(chain_id=self.chain.id, cursor_number=0, cursor_hash="0x0")
                session.add(head)
            head.head_number = self.block
        return tx_hash


@pytest.fixture
def chain(app: FastAPI, gateway: GatewayContext, clock: FakeClock) -> Chain:
    return Chain(app, gateway, clock)


async def public(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/public/orders/{order_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def eip681(order: dict[str, Any], due: int) -> str:
    return f"ethereum:{TEST_USDT}@31337/transfer?address={order['toAddress']}&uint256={due}"


async def test_a_new_order_asks_for_the_whole_amount(
    client: httpx.AsyncClient, signer: Signer
) -> None:
    order = await create(client, signer)
    assert order["dueAmount"] == "20" and order["paymentUri"] == eip681(order, 20 * USDT)
    assert order["paymentQrCode"].endswith(f"qr.png?format=eip681&due={20 * USDT}")
    assert "paymentQrDataUrl" not in order  # only with inlineQr
    view = await public(client, order["orderId"])
    assert view["exceptions"] == [] and view["payments"] == []
    assert view["dueAmount"] == "20" and view["paymentUri"] == order["paymentUri"]
    assert view["paymentQrDataUrl"] == qr_data_url(order["paymentUri"])
    assert view["merchant"] == {"name": "Test Shop", "logoUrl": None, "supportContact": None}
    assert view["txId"] is None and view["explorerTxUrl"] is None
    assert view["completeTime"] is None


async def test_the_price_fields_are_there_only_for_an_order_priced_in_fiat(
    client: httpx.AsyncClient, signer: Signer, gateway: GatewayContext, clock: FakeClock
) -> None:
    plain = await create(client, signer, "10")
    clock.advance(1)  # a fresh request time for the next signed request
    priced = await create(client, signer, "10")
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, priced["orderId"])
        assert order is not None
        order.fiat_amount, order.fiat_currency, order.rate = "72", "CNY", "7.2"
        order.rate_source, order.rate_time_ms = "fixed", 1_767_225_000_000
    fields = {"fiatAmount", "currency", "rate", "rateSource", "rateTime"}
    assert not fields & set(plain) and not fields & set(await public(client, plain["orderId"]))
    view = await public(client, priced["orderId"])
    assert {name: view[name] for name in fields} == {
        "fiatAmount": "72",
        "currency": "CNY",
        "rate": "7.2",
        "rateSource": "fixed",
        "rateTime": 1_767_225_000_000,
    }
    assert view["amount"] == "10"


async def test_a_partial_payment_leaves_the_rest_due_everywhere(
    client: httpx.AsyncClient, signer: Signer, chain: Chain, clock: FakeClock
) -> None:
    order = await create(client, signer)
    tx_hash = await chain.pay(order["orderId"], 10 * USDT)
    view = await public(client, order["orderId"])
    assert view["status"] == "pending" and view["paidAmount"] == "10"
    assert view["dueAmount"] == "10"
    assert view["paymentUri"] == eip681(order, 10 * USDT)  # not 20: the page copies this
    assert view["paymentQrDataUrl"] == qr_data_url(eip681(order, 10 * USDT))
    assert view["paymentQrCode"].endswith(f"format=eip681&due={10 * USDT}")
    assert view["payments"] == [
        {
            "txId": tx_hash,
            "logIndex": 0,
            "amount": "10",
            "symbol": "USDT",
            "decimals": 6,
            "tokenAddress": TEST_USDT,
            "kind": "credit",
            "late": False,
            "status": "final",
            "confirmations": 2,
            "explorerTxUrl": f"{EXPLORER}/tx/{tx_hash}",
            "time": clock.now_ms(),
        }
    ]
    # The image for the due amount may be cached; one asked for a stale amount may not.
    path = view["paymentQrCode"].removeprefix("https://pay.example.com")
    fresh = await client.get(path)
    assert fresh.headers["content-type"] == "image/png"
    assert "immutable" in fresh.headers["cache-control"]
    stale = await client.get(path.replace(f"due={10 * USDT}", f"due={20 * USDT}"))
    assert stale.headers["cache-control"] == "no-store" and stale.content == fresh.content
    # The merchant's view agrees.
    merchant_view = await post(
        client,
        signer,
        CREATE,
        {"chainId": "31337", "symbol": "USDT", "amount": "1", "inlineQr": True},
    )
    made = merchant_view.json()
    assert made["paymentQrDataUrl"] == qr_data_url(made["paymentUri"])


async def test_a_payment_not_final_yet_counts_as_received(
    client: httpx.AsyncClient, signer: Signer, chain: Chain
) -> None:
    order = await create(client, signer)
    await chain.pay(order["orderId"], 5 * USDT, final=False)
    view = await public(client, order["orderId"])
    assert view["pendingAmount"] == "5" and view["dueAmount"] == "15"
    (payment,) = view["payments"]
    assert payment["status"] == "seen" and payment["confirmations"] == 1


async def test_an_overpaid_order_is_complete_with_its_transaction_and_nothing_due(
    client: httpx.AsyncClient, signer: Signer, chain: Chain, clock: FakeClock
) -> None:
    order = await create(client, signer)
    first = await chain.pay(order["orderId"], 20 * USDT)
    await chain.pay(order["orderId"], 20 * USDT)
    view = await public(client, order["orderId"])
    assert view["status"] == "completed" and view["exceptions"] == ["overpaid"]
    assert view["paidAmount"] == "40" and view["dueAmount"] == "0"
    assert view["paymentUri"].endswith("&uint256=0")
    assert view["txId"] == first and view["explorerTxUrl"] == f"{EXPLORER}/tx/{first}"
    assert view["completeTime"] == clock.now_ms()
    assert [p["amount"] for p in view["payments"]] == ["20", "20"]


async def test_a_late_payment_is_marked_late(
    client: httpx.AsyncClient, signer: Signer, chain: Chain
) -> None:
    order = await create(client, signer)
    await chain.pay(order["orderId"], 20 * USDT, block_time_ms=order["expireTime"] + 1000)
    view = await public(client, order["orderId"])
    assert "paid_late" in view["exceptions"]
    (payment,) = view["payments"]
    assert payment["late"] is True and payment["kind"] == "credit"


async def test_a_wrong_token_shows_what_arrived_in_its_own_units(
    app: FastAPI,
    client: httpx.AsyncClient,
    signer: Signer,
    chain: Chain,
    gateway: GatewayContext,
    clock: FakeClock,
) -> None:
    order = await create(client, signer)
    await chain.pay(order["orderId"], 10 * 10**18, token=TEST_USDT18)
    await chain.pay(order["orderId"], 12345, token=OUTSIDE_TOKEN)
    view = await public(client, order["orderId"])
    assert view["status"] == "pending" and view["exceptions"] == ["wrong_token"]
    assert view["paidAmount"] == "0" and view["dueAmount"] == "20"
    wrong, outside = view["payments"]
    assert (wrong["kind"], wrong["amount"], wrong["symbol"], wrong["decimals"]) == (
        "wrong_token",
        "10",
        "USDT18",
        18,
    )
    assert wrong["tokenAddress"] == TEST_USDT18
    # A token the registry does not know: base units, and no symbol or decimals to guess.
    assert (outside["kind"], outside["amount"], outside["symbol"], outside["decimals"]) == (
        "unsupported_token",
        "12345",
        None,
        None,
    )
    # The merchant's payments list says the same.
    response = await client.get(
        f"/api/v1/payment/contractPayment?orderId={order['orderId']}",
        headers=signer.headers(
            "GET", "/api/v1/payment/contractPayment", query=f"orderId={order['orderId']}"
        ),
    )
    merchant_payments = response.json()["payments"]
    assert [(p["kind"], p["amount"], p["symbol"], p["decimals"]) for p in merchant_payments] == [
        ("wrong_token", "10", "USDT18", 18),
        ("unsupported_token", "12345", None, None),
    ]
    # The live poll renders the same view from plain rows.
    load, render = database_views(
        gateway.sessions, gateway.registry, "https://pay.example.com", clock
    )
    rows = await load([order["orderId"]])
    assert {**render(rows[order["orderId"]]), "serverTime": 0} == {**view, "serverTime": 0}


XSS_NAME = '<script>alert("name")</script>'
XSS_CONTACT = '"><img src=x onerror=alert(1)> support@shop.example'
XSS_LOGO = 'https://cdn.shop.example/logo.png?x="><script>alert(1)</script>'


async def test_branding_is_returned_verbatim_as_json_strings_and_escaped_in_the_page(
    client: httpx.AsyncClient,
    signer: Signer,
    gateway: GatewayContext,
    merchant: MerchantKeys,
    clock: FakeClock,
) -> None:
    async with session_scope(gateway.sessions) as session:
        await set_policy(
            session,
            clock,
            merchant_id=merchant.merchant_id,
            display_name=XSS_NAME,
            logo_url=XSS_LOGO,
            support_contact=XSS_CONTACT,
        )
    order = await create(client, signer)
    view = await public(client, order["orderId"])
    assert view["merchant"] == {
        "name": XSS_NAME,
        "logoUrl": XSS_LOGO,
        "supportContact": XSS_CONTACT,
    }
    page = (await client.get(f"/cashier/{order['orderId']}")).text
    assert "<script>alert" not in page and "<img src=x" not in page
    embedded = re.search(r'data-view="([^"]*)"', page)
    assert embedded is not None
    assert json.loads(unescape(embedded.group(1)))["merchant"]["name"] == XSS_NAME
