"""BTCPay Greenfield end to end on the dev chain: a shop (as the WooCommerce plugin does) makes a
webhook and an invoice priced in EUR (the operator's fixed 0.9 EUR per USDT) through the
Greenfield API, the customer pays the invoice's payment-method destination on chain, the watcher
sees and then finalises the payment, the webhook worker delivers BTCPay's events to the shop's
real HTTP endpoint, which verifies each ``BTCPay-Sig`` with a verifier written here from BTCPay's
documentation; the shop then reads the invoice through Greenfield: Settled.

Real anvil node, real API app, real watcher and webhook worker (the endpoint's first answer is a
500: the worker retries on its schedule, from rows).
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
from tests.compat.greenfield.greenfield_support import client_headers, invoice_body
from tests.e2e.compat_payment_support import (  # noqa: F401  (clock, gateway: fixtures)
    clock,
    deliver_callbacks,
    gateway,
    pay_usdt,
    shop_merchant,
    step_until_idle,
    watch_until_final,
    watcher_at_head,
)
from tests.support import LiveServer

from stablegate.api.context import GatewayContext
from stablegate.chain.evm.rpc import RpcClient
from stablegate.clock import FakeClock
from stablegate.compat.greenfield.credentials import issue_greenfield_credential
from stablegate.db.engine import session_scope
from stablegate.models import WebhookEvent

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]


# --- the shop's side, written from BTCPay's webhook documentation ------------------------------


def btcpay_sig_valid(secret: str, raw_body: bytes, header: str) -> bool:
    """``BTCPay-Sig`` is ``sha256=`` followed by HMAC-SHA256(UTF8(secret), body) in hex, over
    the body exactly as received (as GitHub's webhooks are checked)."""
    scheme, _, digest = header.partition("=")
    mac = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return scheme == "sha256" and hmac.compare_digest(digest, mac)


@dataclass
class ShopWebhook:
    """The shop's webhook URL: the first delivery is answered 500, then each is verified and
    kept; a bad signature is refused and noted."""

    secret: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    answered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> PlainTextResponse:
        raw = await request.body()
        with self.lock:
            self.answered += 1
            if self.answered == 1:
                return PlainTextResponse("busy", status_code=500)
            if not btcpay_sig_valid(self.secret, raw, request.headers.get("BTCPay-Sig", "")):
                self.refused += 1
                return PlainTextResponse("bad signature", status_code=401)
            self.events.append(json.loads(raw))
        return PlainTextResponse("")


# --- the test (the gateway, its watcher and worker: compat_payment_support) --------------------


@pytest.fixture
def shop() -> Iterator[tuple[ShopWebhook, LiveServer]]:
    endpoint = ShopWebhook()
    with LiveServer(endpoint.app()) as server:
        yield endpoint, server


async def test_a_greenfield_invoice_in_eur_is_paid_its_webhooks_verified_and_it_reads_settled(
    gateway: tuple[GatewayContext, Any],  # noqa: F811
    clock: FakeClock,  # noqa: F811
    shop: tuple[ShopWebhook, LiveServer],
    rpc: RpcClient,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
) -> None:
    ctx, app = gateway
    endpoint, server = shop
    watcher = await watcher_at_head(ctx, clock, rpc)

    async with session_scope(ctx.sessions) as session:
        merchant_id = await shop_merchant(
            session, ctx, clock, name="Woo Shop", currency="EUR", rate="0.9"
        )
        # `stablegate merchant create-key --merchant-id … --kind greenfield`
        issued = await issue_greenfield_credential(
            session, ctx.secret_box, clock, ctx.registry, merchant_id=merchant_id
        )
    store_id = issued.credential.store_id
    headers = client_headers(issued.key)

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    async with http:
        # The plugin registers its webhook (everything) and keeps the secret it is given.
        hook = await http.post(
            f"/api/v1/stores/{store_id}/webhooks",
            json={"url": f"{server.url}/", "enabled": True, "authorizedEvents": None},
            headers=headers,
        )
        assert hook.status_code == 200, hook.text
        endpoint.secret = hook.json()["secret"]

        # 9.00 EUR at 0.9 EUR per USDT: 10 USDT.
        made = await http.post(
            f"/api/v1/stores/{store_id}/invoices",
            json=invoice_body(amount="9.00", metadata={"orderId": "1001"}),
            headers=headers,
        )
        assert made.status_code == 200, made.text
        invoice = made.json()
        assert (invoice["amount"], invoice["currency"], invoice["status"]) == ("9", "EUR", "New")
        methods = await http.get(
            f"/api/v1/stores/{store_id}/invoices/{invoice['id']}/payment-methods", headers=headers
        )
        [method] = methods.json()
        assert (method["amount"], method["rate"]) == ("10", "0.9")

        # The customer pays the destination; the watcher sees it, then it becomes final.
        units = int(Decimal(method["amount"]) * 10**6)
        await pay_usdt(rpc, customer_accounts[0], dev_tokens, method["destination"], units)
        await step_until_idle(watcher)
        await watch_until_final(rpc, watcher)
        await deliver_callbacks(ctx, clock)

        assert endpoint.refused == 0
        kinds = [event["type"] for event in endpoint.events]
        assert kinds == [
            "InvoiceCreated",
            "InvoiceReceivedPayment",
            "InvoiceProcessing",
            "InvoiceSettled",
        ]
        for event in endpoint.events:
            assert (event["storeId"], event["invoiceId"]) == (store_id, invoice["id"])
            assert event["webhookId"] == hook.json()["id"]
            assert event["metadata"] == {"orderId": "1001"}
        received, processing, settled = endpoint.events[1:]
        assert received["afterExpiration"] is False
        assert received["payment"]["destination"] == method["destination"]
        assert received["payment"]["value"] == "10"
        assert processing["overPaid"] is False
        assert (settled["overPaid"], settled["manuallyMarked"]) == (False, False)
        assert endpoint.events[0]["isRedelivery"] is True  # its first attempt got the 500

        # The shop reads the invoice in Greenfield's format.
        shown = await http.get(
            f"/api/v1/stores/{store_id}/invoices/{invoice['id']}", headers=headers
        )
        assert shown.status_code == 200
        assert (shown.json()["status"], shown.json()["additionalStatus"]) == ("Settled", "None")
        listed = await http.get(
            f"/api/v1/stores/{store_id}/invoices",
            params={"orderId": "1001", "status": "Settled"},
            headers=headers,
        )
        assert [i["id"] for i in listed.json()] == [invoice["id"]]

    async with session_scope(ctx.sessions) as session:
        statuses = set(
            (
                await session.scalars(
                    select(WebhookEvent.status).where(WebhookEvent.order_id == invoice["id"])
                )
            ).all()
        )
    assert statuses == {"delivered"}
