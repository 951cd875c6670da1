"""The merchant order API end to end through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from tests.support import PAYOUT, TEST_USDT, Signer
from tests.webhooks.test_webhook_urls import BAD_URLS, GOOD_URLS

from stablegate.api.context import GatewayContext
from stablegate.chain.evm import create2
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import Order, WebhookEvent

CREATE = "/api/v1/payment/createQrOrder"
QUERY = "/api/v1/payment/contractPayment"
CANCEL = "/api/v1/payment/cancelOrder"


async def post(
    client: httpx.AsyncClient, signer: Signer, path: str, payload: Any
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post(path, content=body, headers=signer.headers("POST", path, body))


async def get(
    client: httpx.AsyncClient, signer: Signer, path: str, query: str = ""
) -> httpx.Response:
    url = f"{path}?{query}" if query else path
    return await client.get(url, headers=signer.headers("GET", path, query=query))


async def count_orders(gateway: GatewayContext) -> int:
    async with session_scope(gateway.sessions) as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def test_create_order_returns_the_order_object(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    response = await post(
        client,
        signer,
        CREATE,
        {"chainId": "31337", "symbol": "USDT", "amount": "12.5", "orderNo": "A-1", "custNo": "c9"},
    )
    assert response.status_code == 200, response.text
    order = response.json()
    assert order["status"] == "pending"
    assert order["exceptions"] == []
    assert order["amount"] == "12.5"
    assert order["paidAmount"] == "0" and order["pendingAmount"] == "0"
    assert order["decimals"] == 6 and order["tokenAddress"] == TEST_USDT
    assert order["chainId"] == "31337" and order["network"] == "devchain"
    assert order["payoutAddress"] == PAYOUT
    assert order["factory"] == create2.factory_address()
    salt = create2.deposit_salt(order["orderId"])
    assert order["depositSalt"] == "0x" + salt.hex()
    assert order["toAddress"] == create2.forwarder_address(
        create2.factory_address(), create2.implementation_address(), PAYOUT, salt
    )
    assert order["paymentUri"] == (
        f"ethereum:{TEST_USDT}@31337/transfer?address={order['toAddress']}&uint256=12500000"
    )
    assert order["cashierUrl"] == f"https://pay.example.com/cashier/{order['orderId']}"
    assert order["qrCode"].endswith(f"/api/v1/public/orders/{order['orderId']}/qr.png")
    assert order["expireTime"] == clock.now_ms() + 900_000
    assert order["createTime"] == clock.now_ms()
    assert "qrCodeDataUrl" not in order
    assert len(order["orderId"]) == 22  # 128 random bits, URL-safe base64
    assert response.headers["X-RateLimit-Limit"] == "100"
    async with session_scope(gateway.sessions) as session:
        events = (await session.scalars(select(WebhookEvent))).all()
    assert [(e.type, e.sequence) for e in events] == [("order.created", 1)]


async def test_repeat_with_same_order_no_is_idempotent_and_conflicts_when_changed(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    payload = {"chainId": 31337, "symbol": "USDT", "amount": "5", "orderNo": "same"}
    first = await post(client, signer, CREATE, payload)
    clock.advance(1)
    again = await post(client, signer, CREATE, {**payload, "chainId": "31337", "amount": "5.000"})
    assert again.status_code == 200
    assert again.json()["orderId"] == first.json()["orderId"]
    # Amounts come back in their shortest form, as the README says.
    assert again.json()["amount"] == first.json()["amount"] == "5"
    clock.advance(1)
    changed = await post(client, signer, CREATE, {**payload, "amount": "6"})
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "order_conflict"
    assert await count_orders(gateway) == 1


async def test_inline_qr_and_the_qr_image(client: httpx.AsyncClient, signer: Signer) -> None:
    response = await post(
        client,
        signer,
        CREATE,
        {
            "chainId": "31337",
            "symbol": "USDT18",
            "amount": "1.000000000000000001",
            "inlineQr": True,
        },
    )
    assert response.status_code == 200, response.text
    order = response.json()
    assert order["qrCodeDataUrl"].startswith("data:image/png;base64,")
    assert order["paymentUri"].endswith("uint256=1000000000000000001")
    png = await client.get(f"/api/v1/public/orders/{order['orderId']}/qr.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    eip = await client.get(f"/api/v1/public/orders/{order['orderId']}/qr.png?format=eip681")
    assert eip.status_code == 200 and eip.content != png.content


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"chainId": "31337", "symbol": "USDT", "amount": "0"}, 400, "invalid_amount"),
        ({"chainId": "31337", "symbol": "USDT", "amount": "-1"}, 400, "invalid_amount"),
        ({"chainId": "31337", "symbol": "USDT", "amount": "1e3"}, 400, "invalid_amount"),
        ({"chainId": "31337", "symbol": "USDT", "amount": "1.0000001"}, 400, "invalid_amount"),
        ({"chainId": "31337", "symbol": "USDT", "amount": 5}, 400, "invalid_amount"),
        ({"chainId": "31337", "symbol": "USDT", "amount": "1000000.000001"}, 400, "invalid_amount"),
        ({"chainId": "31337", "symbol": "DAI", "amount": "1"}, 400, "unsupported_token"),
        ({"chainId": "999", "symbol": "USDT", "amount": "1"}, 400, "unknown_chain"),
        ({"chainId": "abc", "symbol": "USDT", "amount": "1"}, 400, "unknown_chain"),
        ({"chainId": "56", "symbol": "USDT", "amount": "1"}, 400, "chain_unavailable"),
        ({"symbol": "USDT", "amount": "1"}, 400, "invalid_request"),
        (
            {"chainId": "31337", "symbol": "USDT", "amount": "1", "expireSeconds": 59},
            400,
            "invalid_request",
        ),
        (
            {"chainId": "31337", "symbol": "USDT", "amount": "1", "expireSeconds": 86401},
            400,
            "invalid_request",
        ),
        (
            {
                "chainId": "31337",
                "symbol": "USDT",
                "amount": "1",
                "redirectUrl": "javascript:alert(1)",
            },
            400,
            "invalid_request",
        ),
        (
            {"chainId": "31337", "symbol": "USDT", "amount": "1", "notifyUrl": "ftp://x"},
            400,
            "invalid_notify_url",
        ),
        (
            {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": "x" * 65},
            400,
            "invalid_request",
        ),
        (
            {"chainId": "31337", "symbol": "USDT", "amount": "1", "description": "d" * 257},
            400,
            "invalid_request",
        ),
        (
            {"chainId": "31337", "symbol": "USDT", "amount": "1", "metadata": {"k": "v" * 5000}},
            400,
            "invalid_request",
        ),
        (
            {"chainId": "31337", "symbol": "USDT", "amount": "1", "metadata": [1]},
            400,
            "invalid_request",
        ),
        ([1, 2], 400, "invalid_body"),
    ],
)
async def test_bad_orders_are_refused_with_a_clear_code_and_nothing_written(
    client: httpx.AsyncClient,
    signer: Signer,
    gateway: GatewayContext,
    payload: Any,
    status: int,
    code: str,
) -> None:
    response = await post(client, signer, CREATE, payload)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert await count_orders(gateway) == 0


@pytest.mark.parametrize(("url", "reason"), [*BAD_URLS, (123, "valid string")])
async def test_a_notify_url_the_webhook_guard_refuses_is_invalid_notify_url(
    client: httpx.AsyncClient, signer: Signer, gateway: GatewayContext, url: object, reason: str
) -> None:
    payload = {"chainId": "31337", "symbol": "USDT", "amount": "1", "notifyUrl": url}
    response = await post(client, signer, CREATE, payload)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_notify_url"
    assert error["message"].startswith("notifyUrl: ") and reason in error["message"]
    assert await count_orders(gateway) == 0


@pytest.mark.parametrize(("url", "_host"), GOOD_URLS)
async def test_a_notify_url_the_guard_accepts_is_stored_as_given(
    client: httpx.AsyncClient, signer: Signer, gateway: GatewayContext, url: str, _host: str
) -> None:
    payload = {"chainId": "31337", "symbol": "USDT", "amount": "1", "notifyUrl": url}
    response = await post(client, signer, CREATE, payload)
    assert response.status_code == 200, response.text
    async with session_scope(gateway.sessions) as session:
        assert await session.scalar(select(Order.notify_url)) == url


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (b'{"chainId":"31337","chainId":"1","symbol":"USDT","amount":"1"}', "invalid_body", 400),
        (b'{"chainId":"31337","symbol":"US\\ud800DT","amount":"1"}', "invalid_body", 400),
        (b"\xff\xfe", "invalid_body", 400),
        (b"not json", "invalid_body", 400),
        (b'{"a":' + b"[" * 200 + b"]" * 200 + b"}", "invalid_body", 400),
        (b'{"pad":"' + b"x" * 70_000 + b'"}', "body_too_large", 413),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, signer: Signer, body: bytes, code: str, status: int
) -> None:
    response = await post(client, signer, CREATE, body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_query_one_order_and_pages(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock
) -> None:
    ids = []
    for n in range(5):
        clock.advance(1)
        r = await post(
            client,
            signer,
            CREATE,
            {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": f"N-{n}"},
        )
        ids.append(r.json()["orderId"])
    clock.advance(1)
    one = await get(client, signer, QUERY, "orderNo=N-2")
    assert one.status_code == 200
    assert one.json()["orderId"] == ids[2] and one.json()["payments"] == []
    by_id = await get(client, signer, QUERY, f"orderId={ids[3]}")
    assert by_id.json()["orderNo"] == "N-3"
    seen: list[str] = []
    cursor = None
    while True:
        clock.advance(1)
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await get(client, signer, QUERY, query)).json()
        seen += [o["orderId"] for o in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    missing = await get(client, signer, QUERY, "orderNo=nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = await get(client, signer, QUERY, "cursor=%%%")
    assert bad.status_code == 400
    bad_status = await get(client, signer, QUERY, "status=weird")
    assert bad_status.json()["error"]["code"] == "invalid_status"


async def test_reads_accept_the_api_key_alone(client: httpx.AsyncClient, signer: Signer) -> None:
    await post(
        client,
        signer,
        CREATE,
        {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": "R"},
    )
    response = await client.get(
        QUERY, params={"orderNo": "R"}, headers={"BlockATM-API-Key": signer.keys.api_key}
    )
    assert response.status_code == 200
    unsigned_write = await client.post(
        CREATE,
        content=b'{"chainId":"31337","symbol":"USDT","amount":"1"}',
        headers={"BlockATM-API-Key": signer.keys.api_key},
    )
    assert unsigned_write.status_code == 401
    assert unsigned_write.json()["error"]["code"] == "signature_required"


async def test_cancel(client: httpx.AsyncClient, signer: Signer, clock: FakeClock) -> None:
    await post(
        client,
        signer,
        CREATE,
        {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": "C"},
    )
    clock.advance(1)
    response = await post(client, signer, CANCEL, {"orderNo": "C"})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    clock.advance(1)
    again = await post(client, signer, CANCEL, {"orderNo": "C"})
    assert again.status_code == 200
    clock.advance(1)
    missing = await post(client, signer, CANCEL, {"orderNo": "none"})
    assert missing.status_code == 404
    clock.advance(1)
    neither = await post(client, signer, CANCEL, {})
    assert neither.status_code == 400


async def test_cancel_refused_once_a_payment_is_seen(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, gateway: GatewayContext
) -> None:
    r = await post(
        client,
        signer,
        CREATE,
        {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": "P"},
    )
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, r.json()["orderId"])
        assert order is not None
        order.pending_amount = 5
    clock.advance(1)
    response = await post(client, signer, CANCEL, {"orderNo": "P"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_has_payments"


async def test_public_view_hides_merchant_fields(client: httpx.AsyncClient, signer: Signer) -> None:
    r = await post(
        client,
        signer,
        CREATE,
        {
            "chainId": "31337",
            "symbol": "USDT",
            "amount": "3",
            "orderNo": "secret-no",
            "custNo": "cust",
            "metadata": {"a": 1},
        },
    )
    order_id = r.json()["orderId"]
    view = (await client.get(f"/api/v1/public/orders/{order_id}")).json()
    assert view["orderId"] == order_id and view["amount"] == "3"
    assert "orderNo" not in view and "custNo" not in view and "metadata" not in view
    assert "secret-no" not in json.dumps(view)
    missing = await client.get("/api/v1/public/orders/doesnotexist")
    assert missing.status_code == 404
    chains = (await client.get("/api/v1/public/chains")).json()["chains"]
    assert [c["chainId"] for c in chains] == ["31337"]
    assert {t["symbol"] for t in chains[0]["tokens"]} == {"USDT", "USDT18"}


async def test_health_ready_metrics_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    metrics = await client.get("/metrics", headers={"Authorization": "Bearer metrics-token"})
    assert metrics.status_code == 200 and "stablegate_http_requests" in metrics.text
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/payment/createQrOrder" in spec["paths"]
    key = (await client.get("/api/v1/public/signing-key")).json()
    assert key["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")


async def test_unknown_route_and_method_are_json_errors(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = await client.delete(CREATE)
    assert response.status_code == 405


async def test_nul_characters_are_refused_not_stored(
    client: httpx.AsyncClient, signer: Signer
) -> None:
    body = b'{"chainId":"31337","symbol":"USDT","amount":"1","custNo":"a\\u0000b"}'
    response = await post(client, signer, CREATE, body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_body"
    query = await get(client, signer, QUERY, "orderNo=a%00b")
    assert query.status_code == 400 and query.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"notify_url": "https://shop.example/hook"}, "notify_url"),
        ({"order_no": "A-9"}, "order_no"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_unknown_fields_are_refused_naming_the_field(
    client: httpx.AsyncClient, signer: Signer, gateway: GatewayContext, extra: Any, field: str
) -> None:
    body = {"chainId": "31337", "symbol": "USDT", "amount": "1", **extra}
    response = await post(client, signer, CREATE, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_field" and error["message"].startswith(f"{field}:")
    assert await count_orders(gateway) == 0
    # It wins over other problems: a misspelt name is the likelier cause.
    response = await post(client, signer, CREATE, {"chainId": "31337", "amount": "x", **extra})
    assert response.json()["error"]["code"] == "unknown_field"


async def test_every_json_body_refuses_unknown_fields(
    client: httpx.AsyncClient, signer: Signer
) -> None:
    cancel = await post(client, signer, CANCEL, {"orderNo": "A-1", "reason": "changed my mind"})
    assert cancel.status_code == 400 and cancel.json()["error"]["code"] == "unknown_field"
    resend_path = "/api/v1/webhook/resend"
    resend = await post(client, signer, resend_path, {"failed": True, "event_id": "e1"})
    assert resend.status_code == 400 and resend.json()["error"]["code"] == "unknown_field"
    assert "event_id" in resend.json()["error"]["message"]
