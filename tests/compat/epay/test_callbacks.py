"""The paid callbacks through the webhook worker, on SQLite and PostgreSQL: an EPay order's
callback is a GET whose query verifies with the key and is delivered once the answer contains
"success"; an Epusdt order's a POST of JSON delivered on exactly "ok"; the other events of such
orders are not sent; a worker that was not given the formats does not guess."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests.compat.epay.epay_support import EpayKeys, epay_signed, epusdt_signed
from tests.support import LiveServer
from tests.webhooks.webhook_support import drive, make_worker

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.compat.epay.callbacks import callback_formats
from stablegate.db.engine import session_scope
from stablegate.models import WebhookDelivery, WebhookEvent
from stablegate.orders.service import mark_completed


class Panel:
    def __init__(self) -> None:
        self.hits: list[tuple[str, str, bytes]] = []  # method, path?query, body
        self.answer = b"success"
        self.lock = threading.Lock()

    async def handle(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        with self.lock:
            self.hits.append((request.method, str(request.url), body))
        return PlainTextResponse(self.answer)


@pytest.fixture
def panel() -> Iterator[tuple[Panel, LiveServer]]:
    receiver = Panel()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["GET", "POST"])])
    with LiveServer(app) as server:
        yield receiver, server


def md5_of(params: dict[str, str], key: str, skip: tuple[str, ...]) -> str:
    names = sorted(k for k, v in params.items() if k not in skip and v != "")
    return hashlib.md5(("&".join(f"{k}={params[k]}" for k in names) + key).encode()).hexdigest()


async def complete(gateway: GatewayContext, clock: FakeClock, order_id: str) -> None:
    async with session_scope(gateway.sessions) as session:
        await mark_completed(
            session, clock, gateway.orders, order_id=order_id, actor="ops", reason="test"
        )


async def statuses(gateway: GatewayContext, order_id: str) -> dict[str, str]:
    async with session_scope(gateway.sessions) as session:
        rows = await session.execute(
            select(WebhookEvent.type, WebhookEvent.status).where(WebhookEvent.order_id == order_id)
        )
        return {kind: str(status) for kind, status in rows.all()}


async def test_an_epay_order_is_called_back_by_get_once_paid(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    clock: FakeClock,
    epay: EpayKeys,
    panel: tuple[Panel, LiveServer],
) -> None:
    receiver, server = panel
    params = {
        "pid": epay.pid,
        "type": "wxpay",
        "out_trade_no": "CB-1",
        "notify_url": f"{server.url}/notify.php",
        "name": "Plan",
        "money": "7.20",
    }
    trade_no = (await client.post("/epay/mapi.php", data=epay_signed(params, epay.key))).json()[
        "trade_no"
    ]
    async with make_worker(gateway, clock) as bare:  # no formats: nothing is sent
        await bare.run_once()
    assert receiver.hits == []
    await complete(gateway, clock, trade_no)
    receiver.answer = b"fail"
    async with make_worker(gateway, clock, callback_formats=callback_formats()) as worker:
        # order.created's retry (10 s on) is skipped, then the callback, answered "fail".
        await drive(gateway, clock, [worker], until_ms=clock.now_ms() + 15_000)
        assert len(receiver.hits) == 1
        receiver.answer = b'{"result":"success"}'
        await drive(gateway, clock, [worker], until_ms=clock.now_ms() + 120_000)
    method, url, body = receiver.hits[-1]
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    assert (method, urlsplit(url).path, body) == ("GET", "/notify.php", b"")
    assert query["sign"] == md5_of(query, epay.key, ("sign", "sign_type"))
    assert (query["trade_no"], query["out_trade_no"], query["money"]) == (trade_no, "CB-1", "7.20")
    assert (query["type"], query["trade_status"], query["pid"]) == (
        "wxpay",
        "TRADE_SUCCESS",
        epay.pid,
    )
    assert await statuses(gateway, trade_no) == {
        "order.created": "no_endpoint",  # not a callback
        "order.completed": "delivered",
    }
    async with session_scope(gateway.sessions) as session:
        errors = (await session.scalars(select(WebhookDelivery.error))).all()
    assert "this worker cannot send epay callbacks" in errors


async def test_an_epusdt_order_is_called_back_by_post_and_needs_exactly_ok(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    clock: FakeClock,
    epay: EpayKeys,
    panel: tuple[Panel, LiveServer],
) -> None:
    receiver, server = panel
    body = {"order_id": "CB-2", "amount": 36, "notify_url": f"{server.url}/epusdt"}
    made = await client.post(
        f"/epusdt/{epay.pid}/api/v1/order/create-transaction",
        json=epusdt_signed(body, epay.key),
    )
    trade_id = made.json()["data"]["trade_id"]
    await complete(gateway, clock, trade_id)
    receiver.answer = b"ok\n"
    async with make_worker(gateway, clock, callback_formats=callback_formats()) as worker:
        await worker.run_once()
        await worker.run_once()  # order.created (skipped), then order.completed ("ok\n")
        assert len(receiver.hits) == 1 and await statuses(gateway, trade_id) == {
            "order.created": "no_endpoint",
            "order.completed": "pending",
        }
        receiver.answer = b"ok"
        await drive(gateway, clock, [worker], until_ms=clock.now_ms() + 120_000)
    method, _, raw = receiver.hits[-1]
    callback = json.loads(raw)
    signed = {k: str(v) for k, v in callback.items()}
    assert method == "POST" and callback["signature"] == md5_of(signed, epay.key, ("signature",))
    assert (callback["order_id"], callback["amount"], callback["actual_amount"]) == ("CB-2", 36, 5)
    assert callback["status"] == 2 and callback["block_transaction_id"] == ""  # marked by hand
    assert (await statuses(gateway, trade_id))["order.completed"] == "delivered"
