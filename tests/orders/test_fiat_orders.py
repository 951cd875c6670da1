"""Orders priced in fiat through the API, with the gateway's real rates (a fixed rate set the way
the operator sets one): the conversion, rounded up; the rate locked for the order's lifetime;
idempotent repeats that compare the price asked; refusals that store nothing. On SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from tests.api.test_orders_api import CREATE, QUERY, count_orders, get, post
from tests.support import MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import Merchant, Order, WebhookEvent
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store

PRICE_FIELDS = ("fiatAmount", "currency", "rate", "rateSource", "rateTime")


async def fixed_rate(
    gateway: GatewayContext, clock: FakeClock, rate: str, currency: str = "CNY"
) -> int:
    """The operator's fixed USDT rate for ``currency`` (``rates set-fixed``); its time, ms."""
    clock.advance(1)
    async with session_scope(gateway.sessions) as session:
        row = await store.set_rule(
            session,
            clock,
            scope=GATEWAY_SCOPE,
            symbol="USDT",
            currency=currency,
            changes={"adjust": rate},
            actor="ops",
        )
    assert row is not None
    return row.updated_at_ms


def fiat_order(amount: str = "72", currency: str = "CNY", **fields: Any) -> dict[str, Any]:
    return {"chainId": "31337", "symbol": "USDT", "amount": amount, "currency": currency, **fields}


async def create(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, payload: dict[str, Any]
) -> httpx.Response:
    clock.advance(1)  # every signed request with a fresh request time
    return await post(client, signer, CREATE, payload)


async def test_72_cny_at_a_fixed_7_2_is_10_usdt_with_the_rate_locked_on_the_order(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    set_at = await fixed_rate(gateway, clock, "7.2")
    response = await create(client, signer, clock, fiat_order(orderNo="cny-1"))
    assert response.status_code == 200, response.text
    order = response.json()
    assert order["amount"] == "10" and order["symbol"] == "USDT"
    assert {name: order[name] for name in PRICE_FIELDS} == {
        "fiatAmount": "72",
        "currency": "CNY",
        "rate": "7.2",
        "rateSource": "fixed",
        "rateTime": set_at,
    }
    assert order["paymentUri"].endswith("uint256=10000000")
    # The stored row, the merchant's query and the order.created event say the same.
    async with session_scope(gateway.sessions) as session:
        row = await session.get(Order, order["orderId"])
        assert row is not None
        assert (row.amount, row.fiat_amount, row.fiat_currency) == (10_000_000, "72", "CNY")
        assert (row.rate, row.rate_source, row.rate_time_ms) == ("7.2", "fixed", set_at)
        [event] = (await session.scalars(select(WebhookEvent))).all()
    assert event.type == "order.created"
    assert {name: event.payload["data"][name] for name in PRICE_FIELDS} == {
        name: order[name] for name in PRICE_FIELDS
    }
    clock.advance(1)
    queried = (await get(client, signer, QUERY, f"orderId={order['orderId']}")).json()
    assert {name: queried[name] for name in (*PRICE_FIELDS, "amount")} == {
        name: order[name] for name in (*PRICE_FIELDS, "amount")
    }


async def test_the_token_amount_is_rounded_up_to_the_tokens_decimals(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    await fixed_rate(gateway, clock, "7.2")
    response = await create(client, signer, clock, fiat_order("100"))
    assert response.status_code == 200, response.text
    # 100 / 7.2 = 13.888...: the merchant never gets less, so 13.888889 USDT.
    assert Decimal(100) / Decimal("7.2") < Decimal("13.888889")
    assert response.json()["amount"] == "13.888889"
    assert response.json()["fiatAmount"] == "100"


async def test_a_repeat_returns_the_order_and_a_changed_price_is_a_conflict(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    await fixed_rate(gateway, clock, "7.2")
    first = (await create(client, signer, clock, fiat_order(orderNo="rep"))).json()
    # The same price written another way is the same request.
    again = await create(client, signer, clock, fiat_order("72.00", orderNo="rep"))
    assert again.status_code == 200 and again.json() == first
    for changed in (
        fiat_order("72.01", orderNo="rep"),
        fiat_order("72", "HKD", orderNo="rep"),  # no HKD rate needed to say so
        {"chainId": "31337", "symbol": "USDT", "amount": "10", "orderNo": "rep"},
    ):
        conflict = await create(client, signer, clock, changed)
        assert conflict.status_code == 409, (changed, conflict.text)
        assert conflict.json()["error"]["code"] == "order_conflict"
    # And an order in tokens repeated with a price in fiat conflicts too.
    tokens = {"chainId": "31337", "symbol": "USDT", "amount": "10", "orderNo": "tok"}
    assert (await create(client, signer, clock, tokens)).status_code == 200
    conflict = await create(client, signer, clock, fiat_order(orderNo="tok"))
    assert conflict.json()["error"]["code"] == "order_conflict"
    assert await count_orders(gateway) == 2


async def test_the_rate_is_locked_when_it_moves_after_creation(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    await fixed_rate(gateway, clock, "7.2")
    first = (await create(client, signer, clock, fiat_order(orderNo="lock"))).json()
    await fixed_rate(gateway, clock, "8")
    # A new order takes the new rate ...
    later = (await create(client, signer, clock, fiat_order(orderNo="later"))).json()
    assert (later["amount"], later["rate"]) == ("9", "8")
    # ... the first keeps its own, and its repeat returns it as it was made.
    clock.advance(1)
    queried = (await get(client, signer, QUERY, "orderNo=lock")).json()
    assert (queried["amount"], queried["rate"]) == ("10", "7.2")
    repeat = await create(client, signer, clock, fiat_order(orderNo="lock"))
    assert repeat.status_code == 200 and repeat.json() == first
    # Even with no rate at all any more.
    async with session_scope(gateway.sessions) as session:
        await store.delete_rule(
            session, clock, scope=GATEWAY_SCOPE, symbol="USDT", currency="CNY", actor="ops"
        )
    repeat = await create(client, signer, clock, fiat_order(orderNo="lock"))
    assert repeat.status_code == 200 and repeat.json()["amount"] == "10"


async def test_no_rate_is_503_rate_unavailable_and_nothing_is_stored(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    response = await create(client, signer, clock, fiat_order(orderNo="none"))
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_unavailable" and error["message"]
    assert await count_orders(gateway) == 0
    async with session_scope(gateway.sessions) as session:
        events = await session.scalar(select(func.count()).select_from(WebhookEvent))
    assert events == 0


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (fiat_order(currency="XYZ"), "unsupported_currency"),
        (fiat_order(currency="cny"), "invalid_request"),
        (fiat_order(currency="CNYY"), "invalid_request"),
        (fiat_order("0"), "invalid_amount"),
        (fiat_order("-72"), "invalid_amount"),
        (fiat_order("7.2e1"), "invalid_amount"),
        (fiat_order("72.123456789"), "invalid_amount"),  # 9 decimals
        (fiat_order(symbol="USDT18"), "unsupported_currency"),  # no market price for it
        (fiat_order("7200000.08"), "invalid_amount"),  # 1,000,000.011112 USDT: above the max
    ],
)
async def test_bad_fiat_orders_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    signer: Signer,
    clock: FakeClock,
    gateway: GatewayContext,
    payload: dict[str, Any],
    code: str,
) -> None:
    await fixed_rate(gateway, clock, "7.2")
    response = await create(client, signer, clock, payload)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert await count_orders(gateway) == 0


async def test_unique_amount_reserves_from_the_converted_amount(
    client: httpx.AsyncClient,
    signer: Signer,
    clock: FakeClock,
    gateway: GatewayContext,
    merchant: MerchantKeys,
) -> None:
    async with session_scope(gateway.sessions) as session:
        await session.execute(
            update(Merchant)
            .where(Merchant.id == merchant.merchant_id)
            .values(deposit_strategy="unique_amount")
        )
    await fixed_rate(gateway, clock, "7.2")
    amounts = []
    for number in range(2):
        response = await create(client, signer, clock, fiat_order(orderNo=f"u-{number}"))
        assert response.status_code == 200, response.text
        amounts.append(Decimal(response.json()["amount"]))
        assert response.json()["fiatAmount"] == "72"
    # Each a few millionths above 10 USDT, never below, and never the same.
    assert len(set(amounts)) == 2
    assert all(Decimal(10) < amount < Decimal("10.01") for amount in amounts)


async def test_an_order_in_tokens_keeps_its_fingerprint_and_its_fields(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    payload = {"chainId": "31337", "symbol": "USDT", "amount": "12.5", "orderNo": "old"}
    order = (await create(client, signer, clock, payload)).json()
    assert not set(PRICE_FIELDS) & set(order)
    # The fingerprint of every order made before fiat pricing, computed as it always was.
    fields = {
        "chainId": 31337,
        "symbol": "USDT",
        "amount": 12_500_000,
        "custNo": None,
        "notifyUrl": None,
        "redirectUrl": None,
        "expireSeconds": 900,
        "description": None,
        "metadata": None,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    async with session_scope(gateway.sessions) as session:
        row = await session.get(Order, order["orderId"])
    assert row is not None
    assert row.request_fingerprint == hashlib.sha256(canonical.encode()).hexdigest()
    assert (row.fiat_amount, row.fiat_currency, row.rate, row.rate_source) == (None,) * 4
