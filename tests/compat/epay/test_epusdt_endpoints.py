"""Epusdt's create-transaction under /epusdt/{pid}: a JSON body signed with MD5 (the amount in
its shortest form), an order priced in CNY, Epusdt's answer shape (HTTP 200 whatever the
status_code), repeats that return the same order. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from tests.compat.epay.epay_support import EpayKeys, epusdt_signed, plugin_sign
from tests.support import NOW_MS

from stablegate.api.context import GatewayContext
from stablegate.db.engine import session_scope
from stablegate.models import Order
from stablegate.models.order import NotifyFormat


def path(pid: str) -> str:
    return f"/epusdt/{pid}/api/v1/order/create-transaction"


def request_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": "E-1",
        "amount": 72,
        "notify_url": "https://shop.example/epusdt/notify",
        "redirect_url": "https://shop.example/done",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


async def create(
    client: httpx.AsyncClient, pid: str, body: dict[str, Any] | bytes
) -> dict[str, Any]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(
        path(pid), content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = json.loads(response.text, parse_float=Decimal)
    return answer


async def test_create_transaction_makes_an_order_priced_in_cny(
    client: httpx.AsyncClient, gateway: GatewayContext, epay: EpayKeys
) -> None:
    answer = await create(client, epay.pid, epusdt_signed(request_body(), epay.key))
    assert (answer["status_code"], answer["message"]) == (200, "success")
    assert answer["request_id"]
    data = answer["data"]
    assert data["order_id"] == "E-1" and data["amount"] == 72
    assert data["actual_amount"] == 10  # 72 CNY at 7.2 CNY per USDT
    assert data["payment_url"] == f"https://pay.example.com/cashier/{data['trade_id']}"
    assert data["expiration_time"] == NOW_MS // 1000 + 1 + 900
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, data["trade_id"])
        assert order is not None
        assert data["token"] == order.to_address
        assert order.notify_format == NotifyFormat.EPUSDT and order.order_no == "E-1"
        assert (order.fiat_amount, order.fiat_currency, order.amount) == ("72", "CNY", 10_000_000)

    # A PHP client sends 72.0 and signs "amount=72": the same order.
    body = request_body(amount=72)
    body["signature"] = plugin_sign(body, epay.key, ("signature",))
    raw = json.dumps(body).replace('"amount": 72', '"amount": 72.0').encode()
    again = await create(client, epay.pid, raw)
    assert again["data"]["trade_id"] == data["trade_id"]


async def test_a_fractional_amount_is_signed_in_its_shortest_form(
    client: httpx.AsyncClient, epay: EpayKeys
) -> None:
    body = request_body(order_id="E-2", amount=Decimal("10.50"))
    text_signed = {**body, "amount": "10.5"}
    signature = plugin_sign(text_signed, epay.key, ("signature",))
    raw = json.dumps({**text_signed, "signature": signature}).replace('"10.5"', "10.50").encode()
    answer = await create(client, epay.pid, raw)
    assert answer["status_code"] == 200 and answer["data"]["amount"] == Decimal("10.5")
    assert answer["data"]["actual_amount"] == Decimal("1.458334")  # rounded up


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"amount": 0}, 400, "amount must be a positive amount with at most 8 decimals"),
        ({"amount": -1}, 400, "amount must be a positive amount with at most 8 decimals"),
        ({"amount": "abc"}, 400, "amount must be a number"),
        ({"amount": None}, 400, "amount is required"),
        ({"amount": True}, 400, "amount must be a string or a number"),
        ({"order_id": None}, 400, "order_id is required and must be a string"),
        ({"order_id": 7}, 400, "order_id is required and must be a string"),
        ({"order_id": "a b"}, 400, "order_id must be 1 to 64 visible ASCII characters"),
        ({"notify_url": None}, 400, "notify_url is required and must be a string"),
        ({"notify_url": "not a url"}, 400, "notify_url: "),
        ({"redirect_url": "ftp://x"}, 400, "redirect_url must be an absolute http or https URL"),
        ({"order_id": {"a": 1}}, 400, "order_id must be a string or a number"),
    ],
)
async def test_bad_input_answers_in_epusdt_shape(
    client: httpx.AsyncClient, epay: EpayKeys, fields: dict[str, Any], status: int, message: str
) -> None:
    body = request_body(**fields)
    for name in [k for k, v in fields.items() if v is None]:
        body.pop(name, None)
    signable = {
        k: v for k, v in body.items() if isinstance(v, str | int) and not isinstance(v, bool)
    }
    body["signature"] = plugin_sign(signable, epay.key, ("signature",))
    answer = await create(client, epay.pid, body)
    assert answer["status_code"] == status and answer["data"] is None
    assert answer["message"].startswith(message), answer


async def test_bad_credentials_and_bodies_answer_in_epusdt_shape(
    client: httpx.AsyncClient, epay: EpayKeys
) -> None:
    signed = epusdt_signed(request_body(), epay.key)
    unknown = await create(client, "1234567890", signed)
    assert (unknown["status_code"], unknown["message"]) == (401, "unknown pid")
    tampered = await create(client, epay.pid, {**signed, "amount": 73})
    assert (tampered["status_code"], tampered["message"]) == (401, "signature verification failed")
    unsigned = await create(client, epay.pid, request_body())
    assert unsigned["status_code"] == 401
    junk = await create(client, epay.pid, b'{"order_id": "x", "order_id": "y"}')
    assert junk["status_code"] == 400 and "duplicate key" in junk["message"]
    conflict = await create(client, epay.pid, signed)
    assert conflict["status_code"] == 200
    other = await create(client, epay.pid, epusdt_signed(request_body(amount=80), epay.key))
    assert (other["status_code"], other["message"]) == (
        400,
        "an order with this number exists with different fields",
    )
