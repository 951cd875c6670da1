"""EPay's submit.php, mapi.php and api.php?act=order over the order service: orders priced in
CNY by the rate engine, out_trade_no as the merchant's order number (a repeat is the same
order), every refusal in EPay's shape with a stable message and never a 500. SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from tests.compat.epay.epay_support import EpayKeys, epay_signed

from stablegate.api.context import GatewayContext
from stablegate.db.engine import session_scope
from stablegate.models import Order
from stablegate.models.order import NotifyFormat

MAPI = "/epay/mapi.php"
SUBMIT = "/epay/submit.php"
API = "/epay/api.php"


def create_params(epay: EpayKeys, **fields: str) -> dict[str, str]:
    params = {
        "pid": epay.pid,
        "type": "alipay",
        "out_trade_no": "20260101000001",
        "notify_url": "https://shop.example/epay/notify",
        "return_url": "https://shop.example/epay/return",
        "name": "VIP 会员",
        "money": "72.00",
        "param": "user=7",
    }
    params.update(fields)
    return {k: v for k, v in params.items() if v is not None}


async def mapi(client: httpx.AsyncClient, params: dict[str, str]) -> dict[str, Any]:
    response = await client.post(MAPI, data=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_mapi_creates_an_order_priced_in_cny(
    client: httpx.AsyncClient, gateway: GatewayContext, epay: EpayKeys
) -> None:
    answer = await mapi(client, epay_signed(create_params(epay), epay.key))
    assert answer["code"] == 1 and answer["msg"] == "success"
    trade_no = answer["trade_no"]
    assert answer["payurl"] == f"https://pay.example.com/cashier/{trade_no}"
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, trade_no)
        assert order is not None
        assert (order.order_no, order.amount, order.fiat_amount, order.fiat_currency) == (
            "20260101000001",
            10_000_000,  # 72 CNY at 7.2
            "72",
            "CNY",
        )
        assert order.notify_format == NotifyFormat.EPAY and order.compat_key_id == epay.pid
        assert order.notify_url == "https://shop.example/epay/notify"
        assert order.redirect_url == "https://shop.example/epay/return"
        assert order.merchant_id == epay.merchant_id and order.chain_id == 31337

    again = await mapi(client, epay_signed(create_params(epay), epay.key))
    assert again["trade_no"] == trade_no  # the same out_trade_no and fields: the same order

    other = await mapi(client, epay_signed(create_params(epay, money="73.00"), epay.key))
    assert other == {"code": -1, "msg": "an order with this number exists with different fields"}


async def test_submit_redirects_the_browser_to_the_cashier(
    client: httpx.AsyncClient, epay: EpayKeys
) -> None:
    params = epay_signed(create_params(epay, out_trade_no="S-1"), epay.key)
    response = await client.get(f"{SUBMIT}?{urlencode(params)}")
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://pay.example.com/cashier/")
    posted = await client.post(SUBMIT, data=params)  # the same form posted: the same order
    assert posted.headers["location"] == response.headers["location"]

    params["sign"] = "0" * 32
    refused = await client.get(f"{SUBMIT}?{urlencode(params)}")
    assert refused.status_code == 400 and "sign verification failed" in refused.text


async def test_api_php_answers_the_order_in_epay_names(
    client: httpx.AsyncClient, epay: EpayKeys
) -> None:
    created = await mapi(client, epay_signed(create_params(epay), epay.key))
    by_out = await client.get(
        API,
        params={"act": "order", "pid": epay.pid, "key": epay.key, "out_trade_no": "20260101000001"},
    )
    answer = by_out.json()
    assert answer["code"] == 1 and answer["status"] == 0 and answer["endtime"] is None
    assert {
        k: answer[k] for k in ("trade_no", "out_trade_no", "type", "pid", "name", "money", "param")
    } == {
        "trade_no": created["trade_no"],
        "out_trade_no": "20260101000001",
        "type": "alipay",
        "pid": epay.pid,
        "name": "VIP 会员",
        "money": "72.00",
        "param": "user=7",
    }
    assert answer["addtime"] == "2026-01-01 00:00:01"  # the fixture's clock, UTC
    by_trade = await client.get(
        API,
        params={"act": "order", "pid": epay.pid, "key": epay.key, "trade_no": created["trade_no"]},
    )
    assert by_trade.json() == answer

    wrong_key = await client.get(
        API,
        params={"act": "order", "pid": epay.pid, "key": "x" * 32, "trade_no": created["trade_no"]},
    )
    assert wrong_key.json() == {"code": -1, "msg": "unknown pid or wrong key"}
    missing = await client.get(
        API, params={"act": "order", "pid": epay.pid, "key": epay.key, "out_trade_no": "nope"}
    )
    assert missing.json() == {"code": -1, "msg": "no such order"}


BAD_CREATES: list[tuple[dict[str, str], str]] = [
    ({"money": "abc"}, 'money must be an amount such as "10.00"'),
    ({"money": "0.00"}, "money must be a positive amount with at most 8 decimals"),
    ({"money": "1.001"}, 'money must be an amount such as "10.00"'),
    ({"money": ""}, "money is required"),
    ({"out_trade_no": "has space"}, "out_trade_no must be 1 to 64 visible ASCII characters"),
    ({"out_trade_no": "x" * 65}, "out_trade_no must be 1 to 64 visible ASCII characters"),
    ({"notify_url": "ftp://shop.example/n"}, "notify_url: only http and https URLs are called"),
    ({"return_url": "javascript:alert(1)"}, "return_url must be an absolute http or https URL"),
    ({"type": ""}, "type is required"),
    ({"name": "a\x01b"}, "name is at most 256 characters of text"),
    ({"param": "p" * 513}, "param is at most 512 characters"),
    (
        {"money": "99999999999.00"},
        "99999999999 CNY (13888888888.75 USDT) is above",
    ),  # above the gateway's maximum
]


@pytest.mark.parametrize(("fields", "message"), BAD_CREATES)
async def test_bad_input_is_refused_in_epay_shape(
    client: httpx.AsyncClient, epay: EpayKeys, fields: dict[str, str], message: str
) -> None:
    answer = await mapi(client, epay_signed(create_params(epay, **fields), epay.key))
    assert answer["code"] == -1
    assert answer["msg"].startswith(message), answer


async def test_bad_credentials_are_refused_in_epay_shape(
    client: httpx.AsyncClient, epay: EpayKeys
) -> None:
    params = epay_signed(create_params(epay), epay.key)
    assert await mapi(client, {**params, "pid": "1234567890"}) == {"code": -1, "msg": "unknown pid"}
    assert await mapi(client, {**params, "pid": "x"}) == {"code": -1, "msg": "unknown pid"}
    assert await mapi(client, {**params, "money": "7.20"}) == {
        "code": -1,
        "msg": "sign verification failed",
    }
    assert await mapi(client, {**params, "sign_type": "RSA"}) == {
        "code": -1,
        "msg": "sign_type must be MD5",
    }
    unsigned = {k: v for k, v in params.items() if k != "sign"}
    assert await mapi(client, unsigned) == {"code": -1, "msg": "sign verification failed"}
    twice = await client.post(f"{MAPI}?pid={epay.pid}", data=params)
    assert twice.json() == {"code": -1, "msg": "parameter pid is given twice"}
    junk = await client.post(
        MAPI, content=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert junk.json() == {"code": -1, "msg": "the parameters are not valid UTF-8"}


async def test_an_unknown_field_is_signed_and_otherwise_ignored(
    client: httpx.AsyncClient, epay: EpayKeys
) -> None:
    params = epay_signed(create_params(epay, sitename="My Shop", device="pc"), epay.key)
    assert (await mapi(client, params))["code"] == 1
    params["sitename"] = "Changed"
    assert (await mapi(client, params))["msg"] == "sign verification failed"
