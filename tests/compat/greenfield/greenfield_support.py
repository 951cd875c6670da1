"""A ``greenfield`` credential for the test merchant (paying in USDT on the dev chain by default,
the store's currency USD at a fixed 1 per USDT and EUR at 0.9), and the headers a Greenfield
client sends: ``Authorization: token <key>`` and JSON, on GET too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from tests.orders.test_fiat_orders import fixed_rate
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.compat.greenfield.credentials import issue_greenfield_credential
from stablegate.db.engine import session_scope


@dataclass(frozen=True)
class GreenfieldKeys:
    key: str
    key_id: str
    merchant_id: str
    store_id: str

    @property
    def headers(self) -> dict[str, str]:
        return client_headers(self.key)

    def path(self, tail: str = "") -> str:
        return f"/api/v1/stores/{self.store_id}{tail}"


def client_headers(key: str) -> dict[str, str]:
    return {
        "Authorization": f"token {key}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }


@pytest_asyncio.fixture
async def greenfield(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> GreenfieldKeys:
    await fixed_rate(gateway, clock, "1", currency="USD")
    await fixed_rate(gateway, clock, "0.9", currency="EUR")
    async with session_scope(gateway.sessions) as session:
        issued = await issue_greenfield_credential(
            session,
            gateway.secret_box,
            clock,
            gateway.registry,
            merchant_id=merchant.merchant_id,
            chain_id=31337,
            label="WooCommerce",
        )
    made = issued.credential
    return GreenfieldKeys(issued.key, made.key_id, made.merchant_id, made.store_id)


def invoice_body(**fields: Any) -> dict[str, Any]:
    """What the PHP client sends: all four keys, ``checkout`` with every option explicit."""
    checkout: dict[str, Any] = {
        "speedPolicy": None,
        "paymentMethods": None,
        "defaultPaymentMethod": None,
        "lazyPaymentMethods": None,
        "expirationMinutes": None,
        "monitoringMinutes": None,
        "paymentTolerance": None,
        "redirectURL": "https://shop.example/order-received/42",
        "redirectAutomatically": True,
        "requiresRefundEmail": None,
        "checkoutType": None,
        "defaultLanguage": None,
    }
    options = fields.pop("checkout", {})
    if options is not None:
        checkout.update(options)
    body: dict[str, Any] = {
        "amount": "10.50",
        "currency": "EUR",
        "metadata": {"orderId": "42", "orderNumber": "42", "itemDesc": "Order 42"},
        "checkout": checkout if options is not None else None,
    }
    body.update(fields)
    return body


async def create_invoice(
    client: httpx.AsyncClient, keys: GreenfieldKeys, **fields: Any
) -> httpx.Response:
    return await client.post(
        keys.path("/invoices"), json=invoice_body(**fields), headers=keys.headers
    )
