"""The customer picks the payment method in the cashier, on the dev chain: a shop makes a
Greenfield invoice priced in EUR offering USDT and USDC; until the pick the invoice's payment
methods have no destination and the cashier page no address; the customer picks USDC (not the
default) on the cashier page, pays it on chain, the watcher credits it, the invoice settles and
the shop's webhook endpoint receives BTCPay's events, each signature verified.

Real anvil node, real API app, real watcher and webhook worker.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from eth_account.signers.local import LocalAccount
from tests.compat.greenfield.greenfield_support import client_headers, invoice_body
from tests.e2e.compat_payment_support import (  # noqa: F401  (clock: a fixture)
    clock,
    deliver_callbacks,
    open_gateway,
    shop_merchant,
    step_until_idle,
    watch_until_final,
    watcher_at_head,
)
from tests.e2e.test_greenfield_onchain import ShopWebhook, shop  # noqa: F401  (shop: a fixture)
from tests.support import LiveServer

from stablegate.api.context import GatewayContext
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.contracts import standard_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.clock import FakeClock
from stablegate.compat.greenfield.credentials import issue_greenfield_credential
from stablegate.db.engine import session_scope
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]


@pytest_asyncio.fixture
async def gateway(
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    gateway_contracts: DeployedContracts,
) -> AsyncIterator[tuple[GatewayContext, Any]]:
    """The gateway accepting the dev USDT and USDC."""
    async with open_gateway(
        tmp_path, clock, anvil, dev_tokens, gateway_contracts, ("USDT", "USDC")
    ) as opened:
        yield opened


async def test_the_customer_picks_usdc_in_the_cashier_pays_it_and_the_invoice_settles(
    gateway: tuple[GatewayContext, Any],
    clock: FakeClock,  # noqa: F811
    shop: tuple[ShopWebhook, LiveServer],  # noqa: F811
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
        # `stablegate rates set-fixed --symbol USDC --currency EUR --rate 0.75`
        await store.set_rule(
            session, clock, scope=GATEWAY_SCOPE, symbol="USDC", currency="EUR",
            changes={"adjust": "0.75"}, actor="ops",
        )  # fmt: skip
        issued = await issue_greenfield_credential(
            session, ctx.secret_box, clock, ctx.registry, merchant_id=merchant_id
        )
    store_id = issued.credential.store_id
    headers = client_headers(issued.key)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://pay.example.com") as http:
        hook = await http.post(
            f"/api/v1/stores/{store_id}/webhooks",
            json={"url": f"{server.url}/", "enabled": True, "authorizedEvents": None},
            headers=headers,
        )
        assert hook.status_code == 200, hook.text
        endpoint.secret = hook.json()["secret"]

        body = invoice_body(amount="9.00", metadata={"orderId": "1002"})
        body["checkout"]["paymentMethods"] = ["USDT-DEVCHAIN", "USDC-DEVCHAIN"]
        made = await http.post(f"/api/v1/stores/{store_id}/invoices", json=body, headers=headers)
        assert made.status_code == 200, made.text
        invoice = made.json()
        methods_path = f"/api/v1/stores/{store_id}/invoices/{invoice['id']}/payment-methods"
        before = (await http.get(methods_path, headers=headers)).json()
        assert [(m["paymentMethodId"], m["activated"], m["destination"]) for m in before] == [
            ("USDT-DEVCHAIN", False, ""),
            ("USDC-DEVCHAIN", False, ""),
        ]

        # The customer follows the checkout link and picks USDC on the page's own form.
        link = invoice["checkoutLink"].removeprefix("https://pay.example.com")
        page = await http.get(link)
        assert page.status_code == 200 and "Choose how to pay" in page.text
        action = re.search(r'<form method="post" action="([^"]+)" class="picker-form">', page.text)
        assert action is not None
        picked = await http.post(
            action.group(1).replace("&amp;", "&"),
            data={"method": "USDC-DEVCHAIN"},
            headers={"Origin": "https://pay.example.com"},
        )
        assert picked.status_code == 303, picked.text

        [method] = (await http.get(methods_path, headers=headers)).json()
        assert (method["paymentMethodId"], method["activated"]) == ("USDC-DEVCHAIN", True)
        assert (method["amount"], method["rate"]) == ("12", "0.75")  # 9 EUR at 0.75 EUR/USDC
        page = await http.get(link)
        assert method["destination"][2:].lower() in re.sub(r"</span><span>", "", page.text).lower()

        units = int(Decimal(method["amount"]) * 10**6)
        call = standard_token().encode_call("transfer", method["destination"], units)
        await transact(rpc, customer_accounts[0], dev_tokens["USDC"], call)
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
        received = endpoint.events[1]
        assert received["paymentMethodId"] == "USDC-DEVCHAIN"
        assert received["payment"]["destination"] == method["destination"]
        assert received["payment"]["value"] == "12"
        shown = await http.get(
            f"/api/v1/stores/{store_id}/invoices/{invoice['id']}", headers=headers
        )
        assert (shown.json()["status"], shown.json()["additionalStatus"]) == ("Settled", "None")
