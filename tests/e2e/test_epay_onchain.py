"""EPay and Epusdt end to end on the dev chain: a shop plugin creates orders in the foreign
formats (priced in CNY at the operator's fixed 7.2 CNY per USDT), the customer pays on chain, the
watcher completes the orders, the webhook worker sends each format's paid callback to the
shop's real HTTP endpoint, which verifies the MD5 signature with a verifier written here from the
EPay and Epusdt documentation and acknowledges the way the plugins do ("ok" exactly, a body
containing "success"); the shop then queries the orders through EPay's api.php.

Real anvil node, real API app, real watcher and webhook worker (retries as rows: the first
answer of each endpoint is not an acknowledgement, and the worker tries again on its schedule).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests.e2e.compat_payment_support import (  # noqa: F401  (clock, gateway: fixtures)
    clock,
    deliver_callbacks,
    gateway,
    pay_usdt,
    shop_merchant,
    watch_until_final,
    watcher_at_head,
)
from tests.support import LiveServer

from stablegate.api.context import GatewayContext
from stablegate.chain.evm.rpc import RpcClient
from stablegate.clock import FakeClock
from stablegate.compat.epay.credentials import issue_epay_credential
from stablegate.db.engine import session_scope
from stablegate.models import Order, WebhookDelivery, WebhookEvent

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]


# --- the shop's side, written from the plugins' documentation --------------------------------


def documented_sign(params: dict[str, str], key: str, skip: tuple[str, ...]) -> str:
    """md5 of the non-empty parameters but ``skip``, sorted by name, k=v joined with &, then
    the key appended; lowercase hex."""
    names = sorted(name for name, value in params.items() if name not in skip and value != "")
    text = "&".join(f"{name}={params[name]}" for name in names) + key
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def php_number(value: Any) -> str:
    """How a PHP plugin writes a decoded JSON number into the signed text: 10.0 is "10"."""
    return format(Decimal(str(value)).normalize(), "f")


@dataclass
class ShopEndpoint:
    """The shop's notify URLs. Each answers its first callback with something that is not the
    format's acknowledgement, then acknowledges; every callback is verified and kept."""

    key: str
    epusdt: list[dict[str, Any]] = field(default_factory=list)
    epay: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/epusdt/notify", self.epusdt_notify, methods=["POST"]),
                Route("/epay/notify", self.epay_notify, methods=["GET"]),
            ]
        )

    async def epusdt_notify(self, request: Request) -> PlainTextResponse:
        body = json.loads(await request.body(), parse_float=Decimal)
        signed = {name: php_number(v) if not isinstance(v, str) else v for name, v in body.items()}
        expected = documented_sign(signed, self.key, ("signature",))
        if not hmac.compare_digest(expected, str(body.get("signature", ""))):
            with self.lock:
                self.refused.append("epusdt")
            return PlainTextResponse("bad signature")
        with self.lock:
            self.epusdt.append(body)
            first = len(self.epusdt) == 1
        return PlainTextResponse("OK" if first else "ok")  # "OK" is not "ok": retried

    async def epay_notify(self, request: Request) -> PlainTextResponse:
        params = dict(request.query_params)  # as SSPanel reads it: $_GET only
        expected = documented_sign(params, self.key, ("sign", "sign_type"))
        if params.get("sign_type") != "MD5" or not hmac.compare_digest(
            expected, params.get("sign", "")
        ):
            with self.lock:
                self.refused.append("epay")
            return PlainTextResponse("fail")
        with self.lock:
            self.epay.append(params)
            first = len(self.epay) == 1
        return PlainTextResponse("busy" if first else "success")


# --- the test (the gateway, its watcher and worker: compat_payment_support) --------------------


@pytest.fixture
def shop() -> Iterator[tuple[ShopEndpoint, LiveServer]]:
    endpoint = ShopEndpoint(key="")
    with LiveServer(endpoint.app()) as server:
        yield endpoint, server


async def test_epusdt_and_epay_orders_priced_in_cny_are_paid_called_back_and_queried(
    gateway: tuple[GatewayContext, Any],  # noqa: F811
    clock: FakeClock,  # noqa: F811
    shop: tuple[ShopEndpoint, LiveServer],
    rpc: RpcClient,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
) -> None:
    ctx, app = gateway
    endpoint, server = shop
    watcher = await watcher_at_head(ctx, clock, rpc)

    async with session_scope(ctx.sessions) as session:
        merchant_id = await shop_merchant(
            session, ctx, clock, name="Panel Shop", currency="CNY", rate="7.2"
        )
        # `stablegate merchant create-key --merchant-id … --kind epay`
        credential = await issue_epay_credential(
            session, ctx.secret_box, clock, ctx.registry, merchant_id=merchant_id
        )
    pid, key = credential.pid, credential.key
    endpoint.key = key

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    async with http:
        # Epusdt: 72 CNY, signed over its fields with the amount written as "72".
        request = {
            "order_id": "EP-72",
            "amount": "72",
            "notify_url": f"{server.url}/epusdt/notify",
            "redirect_url": "https://shop.example/paid",
        }
        signature = documented_sign(request, key, ("signature",))
        body = json.dumps({**request, "amount": 72.0, "signature": signature})
        response = await http.post(
            f"/epusdt/{pid}/api/v1/order/create-transaction",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        made = json.loads(response.text, parse_float=Decimal)
        assert made["status_code"] == 200, made
        epusdt_order = made["data"]
        assert (epusdt_order["amount"], epusdt_order["actual_amount"]) == (72, 10)

        # EPay (mapi.php): 36.00 CNY.
        form = {
            "pid": pid,
            "type": "alipay",
            "out_trade_no": "PANEL-36",
            "notify_url": f"{server.url}/epay/notify?from=panel",
            "return_url": "https://shop.example/return",
            "name": "Monthly plan",
            "money": "36.00",
            "param": "uid=42",
        }
        form = {
            **form,
            "sign": documented_sign(form, key, ("sign", "sign_type")),
            "sign_type": "MD5",
        }
        epay_order = (await http.post("/epay/mapi.php", data=form)).json()
        assert epay_order["code"] == 1, epay_order

        # The customer pays both deposit addresses on chain.
        transfers = [(epusdt_order["token"], 10_000_000)]
        async with session_scope(ctx.sessions) as session:
            paid_to = await session.get(Order, epay_order["trade_no"])
            assert paid_to is not None and paid_to.amount == 5_000_000
            transfers.append((paid_to.to_address, paid_to.amount))
        for address, units in transfers:
            await pay_usdt(rpc, customer_accounts[0], dev_tokens, address, units)
        await watch_until_final(rpc, watcher)
        await deliver_callbacks(ctx, clock)

        # Each endpoint was called twice (its first answer was no acknowledgement) and verified.
        assert endpoint.refused == []
        assert len(endpoint.epusdt) == 2 and endpoint.epusdt[0] == endpoint.epusdt[1]
        callback = endpoint.epusdt[-1]
        assert {k: callback[k] for k in ("trade_id", "order_id", "amount", "actual_amount")} == {
            "trade_id": epusdt_order["trade_id"],
            "order_id": "EP-72",
            "amount": 72,
            "actual_amount": 10,
        }
        assert callback["token"] == epusdt_order["token"] and callback["status"] == 2
        assert callback["block_transaction_id"].startswith("0x")

        assert len(endpoint.epay) == 2
        notify = endpoint.epay[-1]
        assert notify == {
            "from": "panel",
            "pid": pid,
            "trade_no": epay_order["trade_no"],
            "out_trade_no": "PANEL-36",
            "type": "alipay",
            "name": "Monthly plan",
            "money": "36.00",  # as the shop sent it: dujiaoka compares it with its price
            "trade_status": "TRADE_SUCCESS",
            "param": "uid=42",
            "sign": notify["sign"],
            "sign_type": "MD5",
        }

        # The shop queries both orders in EPay's format: paid.
        for out_trade_no, trade_no, money in (
            ("EP-72", epusdt_order["trade_id"], "72"),
            ("PANEL-36", epay_order["trade_no"], "36.00"),
        ):
            query = {"act": "order", "pid": pid, "key": key, "out_trade_no": out_trade_no}
            answer = (await http.get("/epay/api.php", params=query)).json()
            assert answer["code"] == 1 and answer["status"] == 1, answer
            assert (answer["trade_no"], answer["money"]) == (trade_no, money)
            assert answer["endtime"] is not None

    # Retries were rows: per order, order.created skipped (not a callback), order.completed
    # delivered on its second attempt after a failed first.
    async with session_scope(ctx.sessions) as session:
        rows = (
            await session.execute(
                select(WebhookEvent.order_id, WebhookEvent.type, WebhookEvent.status)
                .where(WebhookEvent.merchant_id == merchant_id)
                .order_by(WebhookEvent.order_id, WebhookEvent.sequence)
            )
        ).all()
        outcomes = (
            await session.scalars(
                select(WebhookDelivery.outcome)
                .where(WebhookDelivery.merchant_id == merchant_id)
                .order_by(WebhookDelivery.id)
            )
        ).all()
    completed = [(order_id, status) for order_id, kind, status in rows if kind == "order.completed"]
    assert sorted(completed) == sorted(
        [(epusdt_order["trade_id"], "delivered"), (epay_order["trade_no"], "delivered")]
    )
    assert {status for _, kind, status in rows if kind == "order.created"} == {"no_endpoint"}
    assert sorted(outcomes).count("failure") == 2 and sorted(outcomes).count("success") == 2
