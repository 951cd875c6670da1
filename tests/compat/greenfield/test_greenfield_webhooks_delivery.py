"""Greenfield webhook deliveries: the events of invoices made through the Greenfield API go, as
BTCPay's event bodies, to the store's enabled webhook through the durable worker (SQLite and
PostgreSQL), signed ``BTCPay-Sig``; a verifier written here from BTCPay's documentation
(``sha256=`` + HMAC-SHA256 keyed with the UTF-8 secret over the raw body, lowercase hex) checks
each. Events the webhook did not subscribe to, events without a Greenfield type, and the events
of a store without a webhook are recorded as skipped, never sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests.compat.greenfield.greenfield_support import GreenfieldKeys, create_invoice
from tests.support import LiveServer
from tests.webhooks.webhook_support import drive, make_worker

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.compat.callbacks import callback_formats
from stablegate.compat.greenfield.callbacks import GreenfieldCallback, event_body
from stablegate.db.engine import session_scope
from stablegate.models import WebhookDelivery, WebhookEvent
from stablegate.models.order import NotifyFormat
from stablegate.webhooks.claims import Claim


def btcpay_sig_ok(secret: str, body: bytes, header: str | None) -> bool:
    """BTCPay's documented check: the header is ``sha256=`` and the hex HMAC-SHA256 of the
    body as received, keyed with the webhook's secret as UTF-8."""
    if header is None or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len("sha256=") :], expected)


class Shop:
    def __init__(self) -> None:
        self.hits: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.lock = threading.Lock()

    async def handle(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        with self.lock:
            self.hits.append((dict(request.headers), body))
        return PlainTextResponse("", status_code=self.status)

    def events(self, secret: str) -> list[dict[str, Any]]:
        found = []
        for headers, body in self.hits:
            assert btcpay_sig_ok(secret, body, headers.get("btcpay-sig"))
            assert headers["content-type"] == "application/json"
            found.append(json.loads(body))
        return found


@pytest.fixture
def shop() -> Iterator[tuple[Shop, LiveServer]]:
    receiver = Shop()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    with LiveServer(app) as server:
        yield receiver, server


async def webhook(
    client: httpx.AsyncClient, keys: GreenfieldKeys, url: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        keys.path("/webhooks"), json={"url": url, **fields}, headers=keys.headers
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def invoice(client: httpx.AsyncClient, keys: GreenfieldKeys) -> dict[str, Any]:
    response = await create_invoice(client, keys)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def mark(
    client: httpx.AsyncClient, keys: GreenfieldKeys, invoice_id: str, status: str
) -> None:
    response = await client.post(
        keys.path(f"/invoices/{invoice_id}/status"), json={"status": status}, headers=keys.headers
    )
    assert response.status_code == 200, response.text


async def event_rows(gateway: GatewayContext, order_id: str) -> dict[str, tuple[str, str | None]]:
    """Each event's status and the error of its last delivery row."""
    async with session_scope(gateway.sessions) as session:
        events = (
            await session.execute(
                select(WebhookEvent.id, WebhookEvent.type, WebhookEvent.status).where(
                    WebhookEvent.order_id == order_id
                )
            )
        ).all()
        found = {}
        for event_id, kind, status in events:
            error = await session.scalar(
                select(WebhookDelivery.error)
                .where(WebhookDelivery.event_id == event_id)
                .order_by(WebhookDelivery.id.desc())
                .limit(1)
            )
            found[kind] = (str(status), error)
        return found


async def test_invoice_events_reach_the_stores_webhook_signed(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    clock: FakeClock,
    greenfield: GreenfieldKeys,
    shop: tuple[Shop, LiveServer],
) -> None:
    receiver, server = shop
    hook = await webhook(client, greenfield, f"{server.url}/?wc-api=btcpaygf_default")
    made = await invoice(client, greenfield)
    await mark(client, greenfield, made["id"], "Settled")
    receiver.status = 500  # the first attempt fails and is retried on the schedule
    async with make_worker(gateway, clock, callback_formats=callback_formats()) as worker:
        await worker.run_once()
        receiver.status = 200
        await drive(gateway, clock, [worker], until_ms=clock.now_ms() + 600_000)
    events = receiver.events(hook["secret"])
    assert [e["type"] for e in events][-2:] == ["InvoiceCreated", "InvoiceSettled"]
    created, settled = events[-2:]
    for event in (created, settled):
        assert event["storeId"] == greenfield.store_id and event["invoiceId"] == made["id"]
        assert event["webhookId"] == hook["id"]
        assert event["metadata"] == made["metadata"]
        assert event["deliveryId"] == event["originalDeliveryId"]
        assert isinstance(event["timestamp"], int) and event["timestamp"] > 10**9
    assert events[0]["isRedelivery"] is False and created["isRedelivery"] is True
    assert (settled["manuallyMarked"], settled["overPaid"]) == (True, False)
    assert await event_rows(gateway, made["id"]) == {
        "order.created": ("delivered", None),
        "order.completed": ("delivered", None),
    }
    shown = await client.get(greenfield.path(f"/invoices/{made['id']}"), headers=greenfield.headers)
    assert shown.json()["status"] == "Settled"


async def test_unsubscribed_events_and_stores_without_a_webhook_are_skipped(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    clock: FakeClock,
    greenfield: GreenfieldKeys,
    shop: tuple[Shop, LiveServer],
) -> None:
    receiver, server = shop
    lonely = await invoice(client, greenfield)  # no webhook yet: skipped
    async with make_worker(gateway, clock, callback_formats=callback_formats()) as worker:
        await worker.run_once()
    assert await event_rows(gateway, lonely["id"]) == {
        "order.created": ("no_endpoint", "the store has no enabled Greenfield webhook")
    }
    hook = await webhook(
        client,
        greenfield,
        f"{server.url}/hook",
        authorizedEvents={"everything": False, "specificEvents": ["InvoiceInvalid"]},
    )
    made = await invoice(client, greenfield)
    await mark(client, greenfield, made["id"], "Invalid")
    async with make_worker(gateway, clock, callback_formats=callback_formats()) as worker:
        await drive(gateway, clock, [worker], until_ms=clock.now_ms() + 60_000)
    [invalid] = receiver.events(hook["secret"])
    assert (invalid["type"], invalid["manuallyMarked"]) == ("InvoiceInvalid", True)
    assert await event_rows(gateway, made["id"]) == {
        "order.created": (
            "no_endpoint",
            "the store's Greenfield webhook did not subscribe to InvoiceCreated",
        ),
        "order.cancelled": ("delivered", None),
    }


def claim(event_type: str, **data: Any) -> Claim:
    order = {
        "orderId": "ord_1",
        "symbol": "USDT",
        "amount": "10",
        "paidAmount": "0",
        "pendingAmount": "0",
        "exceptions": [],
        "toAddress": "0x" + "ab" * 20,
        "txId": None,
        "metadata": {
            "greenfield": {"metadata": {"orderId": "42"}, "paymentMethod": "USDT-DEVCHAIN"}
        },
        **data,
    }
    return Claim(
        event_id="evt_1",
        merchant_id="mch_1",
        order_id="ord_1",
        attempt=1,
        lease_until_ms=0,
        created_at_ms=1_700_000_000_000,
        url="https://shop.example/hook",
        payload={"type": event_type, "createTime": 1_700_000_000_123, "data": order},
        secrets=("s3cret",),
        notify_format=NotifyFormat.GREENFIELD.value,
        webhook_id="gfw_1",
    )


def test_each_order_event_becomes_its_greenfield_event_with_btcpays_fields() -> None:
    seen = event_body(claim("order.payment_seen", pendingAmount="4", txId="0x" + "1" * 64))
    assert seen["type"] == "InvoiceReceivedPayment" and seen["afterExpiration"] is False
    assert seen["paymentMethodId"] == "USDT-DEVCHAIN"
    assert seen["payment"] == {
        "id": "0x" + "1" * 64,
        "receivedDate": 1_700_000_000,
        "value": "4",
        "fee": "0",
        "status": "Processing",
        "destination": "0x" + "ab" * 20,
    }
    late = event_body(claim("order.paid_late", paidAmount="2", exceptions=["paid_late"]))
    assert (late["type"], late["afterExpiration"]) == ("InvoiceReceivedPayment", True)
    short = event_body(claim("order.underpaid", paidAmount="9", exceptions=["underpaid"]))
    assert short["type"] == "InvoicePaymentSettled" and short["payment"]["status"] == "Settled"
    processing = event_body(claim("order.confirming", pendingAmount="11"))
    assert (processing["type"], processing["overPaid"]) == ("InvoiceProcessing", True)
    settled = event_body(claim("order.completed", paidAmount="10"))
    assert (settled["type"], settled["overPaid"], settled["manuallyMarked"]) == (
        "InvoiceSettled",
        False,
        False,
    )
    expired = event_body(claim("order.expired", paidAmount="3", exceptions=["underpaid"]))
    assert (expired["type"], expired["partiallyPaid"]) == ("InvoiceExpired", True)
    created = event_body(claim("order.created"))
    assert created == {
        "deliveryId": "evt_1",
        "webhookId": "gfw_1",
        "originalDeliveryId": "evt_1",
        "isRedelivery": False,
        "type": "InvoiceCreated",
        "timestamp": 1_700_000_000,
        "storeId": "mch_1",
        "invoiceId": "ord_1",
        "metadata": {"orderId": "42"},
    }
    callback = GreenfieldCallback()
    assert callback.skip_reason(claim("order.wrong_token")) is not None
    assert callback.skip_reason(claim("order.payment_reversed")) is not None
    assert callback.skip_reason(claim("order.created")) is None


def test_the_request_is_a_post_signed_over_its_exact_body() -> None:
    request = GreenfieldCallback().request(claim("order.completed"), "https://shop.example/hook")
    assert request.method == "POST" and request.url == "https://shop.example/hook"
    assert btcpay_sig_ok("s3cret", request.body, request.headers["BTCPay-Sig"])
    assert not btcpay_sig_ok("other", request.body, request.headers["BTCPay-Sig"])
    assert not btcpay_sig_ok("s3cret", request.body + b" ", request.headers["BTCPay-Sig"])
    assert json.loads(request.body)["type"] == "InvoiceSettled"
