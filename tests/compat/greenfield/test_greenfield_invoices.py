"""Greenfield invoices over the order service: created as the PHP client sends them (priced in
fiat through the rate engine, or in the token itself), read, listed with its filters, their
payment methods and payments, marked Invalid or Settled through the order's own operations;
refusals in Greenfield's shapes, every success 200. SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from tests.api.test_orders_api import CREATE, post
from tests.compat.greenfield.greenfield_support import GreenfieldKeys, create_invoice
from tests.support import NOW_MS, Signer

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import ApiKey, Order, Payment
from stablegate.models.payment import PaymentKind, PaymentStatus


async def created(client: httpx.AsyncClient, keys: GreenfieldKeys, **fields: Any) -> dict[str, Any]:
    response = await create_invoice(client, keys, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(gateway: GatewayContext, invoice_id: str) -> Order:
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, invoice_id)
        assert order is not None
        session.expunge(order)
        return order


async def test_an_invoice_in_eur_is_an_order_in_usdt_at_the_locked_rate(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await created(client, greenfield)
    assert invoice["storeId"] == greenfield.store_id
    assert (invoice["amount"], invoice["currency"]) == ("10.5", "EUR")
    assert (invoice["status"], invoice["additionalStatus"]) == ("New", "None")
    assert invoice["checkoutLink"] == f"https://pay.example.com/cashier/{invoice['id']}"
    assert isinstance(invoice["createdTime"], int) and invoice["createdTime"] > 0
    assert invoice["expirationTime"] - invoice["createdTime"] == 15 * 60
    assert invoice["metadata"] == {"orderId": "42", "orderNumber": "42", "itemDesc": "Order 42"}
    assert invoice["checkout"]["redirectURL"] == "https://shop.example/order-received/42"
    assert invoice["checkout"]["paymentMethods"] == ["USDT-DEVCHAIN"]
    assert invoice["availableStatusesForManualMarking"] == ["Settled", "Invalid"]

    order = await stored(gateway, invoice["id"])
    # 10.50 EUR at 0.9 EUR per USDT, rounded up to the token's 6 decimals.
    assert (order.chain_id, order.symbol, order.amount) == (31337, "USDT", 11_666_667)
    assert (order.fiat_amount, order.fiat_currency, order.rate) == ("10.5", "EUR", "0.9")
    assert order.compat_key_id == greenfield.key_id and order.description == "Order 42"
    assert order.order_no == order.id  # metadata.orderId is the shop's, not the order's number

    methods = await client.get(
        greenfield.path(f"/invoices/{invoice['id']}/payment-methods"), headers=greenfield.headers
    )
    assert methods.status_code == 200
    [method] = methods.json()
    assert method["paymentMethodId"] == "USDT-DEVCHAIN" and method["currency"] == "USDT"
    assert (method["rate"], method["amount"], method["due"]) == ("0.9", "11.666667", "11.666667")
    assert (method["totalPaid"], method["paymentMethodPaid"], method["payments"]) == ("0", "0", [])
    assert method["destination"] == order.to_address


async def test_a_repeated_request_is_another_invoice_as_on_btcpay(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    first = await created(client, greenfield)
    second = await created(client, greenfield)
    assert first["id"] != second["id"]


async def test_an_invoice_in_the_token_itself_needs_no_rate(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await created(client, greenfield, amount="5", currency="usdt", checkout={
        "paymentMethods": ["USDT_DEVCHAIN"], "expirationMinutes": 30})  # fmt: skip
    assert (invoice["amount"], invoice["currency"]) == ("5", "USDT")
    assert invoice["expirationTime"] - invoice["createdTime"] == 30 * 60
    assert invoice["checkout"]["paymentMethods"] == ["USDT_DEVCHAIN"]  # echoed as sent
    order = await stored(gateway, invoice["id"])
    assert (order.amount, order.rate, order.fiat_currency) == (5_000_000, None, None)
    methods = await client.get(
        greenfield.path(f"/invoices/{invoice['id']}/payment-methods"), headers=greenfield.headers
    )
    [method] = methods.json()
    assert (method["paymentMethodId"], method["rate"], method["amount"]) == (
        "USDT_DEVCHAIN",
        "1",
        "5",
    )


async def test_the_payment_method_and_the_redirect_placeholders(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await created(client, greenfield, amount="1", currency="USDT18", checkout={
        "paymentMethods": ["USDT-DEVCHAIN", "USDT18_DEVCHAIN"],
        "defaultPaymentMethod": "USDT18-DEVCHAIN",
        "redirectURL": "https://shop.example/done?invoice={InvoiceId}&order={OrderId}",
    })  # fmt: skip
    order = await stored(gateway, invoice["id"])
    assert (order.symbol, order.decimals) == ("USDT18", 18)
    assert order.redirect_url == f"https://shop.example/done?invoice={order.id}&order=42"
    assert invoice["checkout"]["redirectURL"] == order.redirect_url


async def test_a_store_currency_invoice_and_no_checkout(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await created(client, greenfield, currency=None, checkout=None, metadata=None)
    assert invoice["currency"] == "USD" and invoice["metadata"] == {}
    order = await stored(gateway, invoice["id"])
    assert (order.fiat_currency, order.amount) == ("USD", 10_500_000)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"amount": None}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"amount": "1.123456789"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "USDC"}, "currency"),
        ({"checkout": {"paymentMethods": ["USDT18-DEVCHAIN"]}}, "currency"),  # no fiat price
        ({"metadata": ["orderId"]}, "metadata"),
        ({"metadata": {"itemDesc": "x" * 5000}}, "metadata"),
        ({"checkout": {"paymentMethods": ["BTC-CHAIN"]}}, "checkout.paymentMethods[0]"),
        ({"checkout": {"paymentMethods": ["USDT-DEVCHAIN", 7]}}, "checkout.paymentMethods[1]"),
        ({"checkout": {"paymentMethods": "USDT-DEVCHAIN"}}, "checkout.paymentMethods"),
        ({"checkout": {"expirationMinutes": 0.5}}, "checkout.expirationMinutes"),
        ({"checkout": {"expirationMinutes": 2000}}, "checkout.expirationMinutes"),
        ({"checkout": {"redirectURL": "javascript:alert(1)"}}, "checkout.redirectURL"),
    ],
)
async def test_invalid_fields_are_422_with_their_path(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    greenfield: GreenfieldKeys,
    fields: dict[str, Any],
    path: str,
) -> None:
    response = await create_invoice(client, greenfield, **fields)
    assert response.status_code == 422, response.text
    [problem] = response.json()
    assert problem["path"] == path and problem["message"]
    async with session_scope(gateway.sessions) as session:
        assert await session.scalar(Order.__table__.select().limit(1)) is None


async def test_a_body_that_is_not_json_is_400_in_greenfield_shape(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    response = await client.post(
        greenfield.path("/invoices"), content=b"{nope", headers=greenfield.headers
    )
    assert response.status_code == 400 and set(response.json()) == {"code", "message"}


async def test_reading_and_listing(
    client: httpx.AsyncClient, clock: FakeClock, greenfield: GreenfieldKeys
) -> None:
    ids = []
    for order_id in ("A", "B", "A"):
        clock.advance(1000)
        invoice = await created(client, greenfield, metadata={"orderId": order_id})
        ids.append(invoice["id"])
    clock.advance(1000)
    number_id = await created(client, greenfield, metadata={"orderId": 7})

    async def listed(query: str) -> list[str]:
        response = await client.get(
            greenfield.path("/invoices") + query, headers=greenfield.headers
        )
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()]

    newest_first = [number_id["id"], *reversed(ids)]
    assert await listed("") == newest_first
    assert await listed("?orderId=A") == [ids[2], ids[0]]
    assert await listed("?orderId=A&orderId=B") == [ids[2], ids[1], ids[0]]
    assert await listed("?orderId=7") == [number_id["id"]]
    assert await listed("?take=2&skip=1") == newest_first[1:3]
    assert await listed("?status=New") == newest_first
    assert await listed("?status=Settled&status=Expired") == []
    bad = await client.get(greenfield.path("/invoices?status=Paid"), headers=greenfield.headers)
    assert bad.status_code == 422 and bad.json()[0]["path"] == "status"
    bad = await client.get(greenfield.path("/invoices?take=-1"), headers=greenfield.headers)
    assert bad.status_code == 422 and bad.json()[0]["path"] == "take"

    one = await client.get(greenfield.path(f"/invoices/{ids[1]}"), headers=greenfield.headers)
    assert one.status_code == 200 and one.json()["metadata"] == {"orderId": "B"}
    own = await client.get(f"/api/v1/invoices/{ids[1]}", headers=greenfield.headers)
    assert own.status_code == 200 and own.json() == one.json()
    missing = await client.get(greenfield.path("/invoices/nope"), headers=greenfield.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_orders_of_the_signed_api_are_not_invoices(
    client: httpx.AsyncClient, clock: FakeClock, signer: Signer, greenfield: GreenfieldKeys
) -> None:
    clock.advance(1)
    order = await post(
        client, signer, CREATE, {"chainId": "31337", "symbol": "USDT", "amount": "1"}
    )
    assert order.status_code == 200
    order_id = order.json()["orderId"]
    response = await client.get(
        greenfield.path(f"/invoices/{order_id}"), headers=greenfield.headers
    )
    assert response.status_code == 404
    listed = await client.get(greenfield.path("/invoices"), headers=greenfield.headers)
    assert listed.json() == []


async def test_marking_invalid_cancels_and_settled_completes_by_hand(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    first = await created(client, greenfield)
    second = await created(client, greenfield)

    async def mark(invoice_id: str, status: object) -> httpx.Response:
        return await client.post(
            greenfield.path(f"/invoices/{invoice_id}/status"),
            json={"status": status},
            headers=greenfield.headers,
        )

    invalid = await mark(first["id"], "Invalid")
    assert invalid.status_code == 200
    assert (invalid.json()["status"], invalid.json()["additionalStatus"]) == ("Invalid", "Marked")
    assert (await mark(first["id"], "Invalid")).status_code == 200  # already so: unchanged
    refused = await mark(first["id"], "Settled")
    assert refused.status_code == 422 and refused.json()[0]["path"] == "status"
    assert (await stored(gateway, first["id"])).status == "cancelled"

    settled = await mark(second["id"], "Settled")
    assert settled.status_code == 200
    assert (settled.json()["status"], settled.json()["additionalStatus"]) == ("Settled", "Marked")
    order = await stored(gateway, second["id"])
    assert order.status == "completed" and "manual" in order.exceptions
    assert (await mark(second["id"], "Invalid")).status_code == 422
    assert (await mark(second["id"], "Paid")).status_code == 422
    assert (await mark(second["id"], None)).status_code == 422


async def test_payments_are_listed_with_the_txid_and_log_index(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await created(client, greenfield, amount="3", currency="USDT")
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, invoice["id"])
        assert order is not None
        session.add(
            Payment(
                chain_id=31337, tx_hash="0x" + "ab" * 32, log_position=0, log_index=4,
                block_number=10, block_hash="0x" + "cd" * 32, block_time_ms=NOW_MS + 5000,
                token_address=order.token_address, from_address="0x" + "11" * 20,
                to_address=order.to_address, amount=1_000_000, order_id=order.id,
                status=PaymentStatus.SEEN, kind=PaymentKind.CREDIT, late=False, credited=False,
                created_at_ms=NOW_MS, updated_at_ms=NOW_MS,
            )
        )  # fmt: skip
        order.pending_amount = 1_000_000
    read = await client.get(
        greenfield.path(f"/invoices/{invoice['id']}"), headers=greenfield.headers
    )
    assert (read.json()["status"], read.json()["additionalStatus"]) == ("New", "PaidPartial")
    assert Decimal(read.json()["paidAmount"]) == 1
    methods = await client.get(
        greenfield.path(f"/invoices/{invoice['id']}/payment-methods"), headers=greenfield.headers
    )
    [method] = methods.json()
    assert (method["totalPaid"], method["due"]) == ("1", "2")
    assert method["payments"] == [
        {
            "id": f"0x{'ab' * 32}-4",
            "receivedDate": (NOW_MS + 5000) // 1000,
            "value": "1",
            "fee": "0",
            "status": "Processing",
            "destination": method["destination"],
        }
    ]


async def test_each_endpoint_needs_its_permission(
    client: httpx.AsyncClient, gateway: GatewayContext, greenfield: GreenfieldKeys
) -> None:
    invoice = await created(client, greenfield)
    async with session_scope(gateway.sessions) as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == greenfield.key_id)
            .values(compat_permissions=f"btcpay.store.canviewinvoices:{greenfield.store_id}")
        )
    read = await client.get(
        greenfield.path(f"/invoices/{invoice['id']}"), headers=greenfield.headers
    )
    assert read.status_code == 200
    for response in (
        await create_invoice(client, greenfield),
        await client.post(
            greenfield.path(f"/invoices/{invoice['id']}/status"),
            json={"status": "Invalid"},
            headers=greenfield.headers,
        ),
        await client.get(greenfield.path(), headers=greenfield.headers),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "missing_permission"


async def test_the_shopper_link_redirects_to_the_cashier(
    client: httpx.AsyncClient, greenfield: GreenfieldKeys
) -> None:
    invoice = await created(client, greenfield)
    response = await client.get(f"/i/{invoice['id']}")
    assert response.status_code == 302
    assert response.headers["location"] == invoice["checkoutLink"]
    assert (await client.get("/i/nope")).status_code == 404
