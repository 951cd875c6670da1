"""Issue 7, finding 1, end to end on the dev chain: merchant A cannot pass off its own webhook as
merchant B's.

Real anvil node, real API, watcher and webhook worker, B's real HTTP endpoint. A creates an order
with B's orderNo and amount and B's endpoint as its notifyUrl, and pays it; the gateway really
completes it and really signs A's order.completed with its V1 key, the key that signs B's
webhooks too. B's endpoint gets both orders' webhooks. The SDK's verify_webhook and the verifier
the README shows reject A's, because its body names merchant A, and accept B's own.
"""

from __future__ import annotations

import base64
import json
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from eth_account.signers.local import LocalAccount
from stablegate_client import WebhookVerificationError, verify_webhook
from tests.chain_files import dev_chain_settings
from tests.docs_support import exec_block
from tests.support import NOW_MS, MerchantKeys, Signer
from tests.webhooks.webhook_support import Hit, Receiver, drive, make_worker

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.blocks import fetch_header
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.reports import StepOutcome

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]

CREATE = "/api/v1/payment/createQrOrder"


@dataclass
class Shop:
    keys: MerchantKeys
    signer: Signer


@dataclass
class Gateway:
    ctx: GatewayContext
    client: httpx.AsyncClient
    clock: FakeClock

    async def create_order(self, shop: Shop, **fields: Any) -> dict[str, Any]:
        body = json.dumps({"chainId": 31337, "symbol": "USDT", **fields}).encode()
        response = await self.client.post(
            CREATE, content=body, headers=shop.signer.headers("POST", CREATE, body)
        )
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        return order


@pytest.fixture
def shop_b_endpoint(clock: FakeClock) -> Iterator[Receiver]:
    """Merchant B's webhook endpoint: a real HTTP server that keeps every request."""
    with Receiver(clock) as receiver:
        yield receiver


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS)


@pytest_asyncio.fixture
async def gateway(
    tmp_path: Path,
    clock: FakeClock,
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    gateway_contracts: DeployedContracts,
) -> AsyncIterator[Gateway]:
    settings = dev_chain_settings(
        tmp_path,
        anvil.url,
        gateway_contracts,
        dev_tokens,
        allow_private_webhooks=True,  # B's endpoint is on 127.0.0.1
    )
    app = create_app(settings, clock=clock, migrate=True)
    ctx: GatewayContext = app.state.gateway
    await upgrade(ctx.engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield Gateway(ctx, client, clock)
    await ctx.engine.dispose()


async def new_shop(gateway: Gateway, name: str, notify_url: str | None = None) -> Shop:
    async with session_scope(gateway.ctx.sessions) as session:
        created = await create_merchant(
            session,
            gateway.ctx.secret_box,
            gateway.clock,
            name=name,
            payout_address=Account.create().address,
            chain_ids=[31337],
            notify_url=notify_url,
        )
    keys = MerchantKeys(
        created.merchant_id, created.api_key, created.secret_key, created.webhook_secret
    )
    return Shop(keys, Signer(keys, gateway.clock))


async def pay(
    rpc: RpcClient, payer: LocalAccount, token: str, order: dict[str, Any], units: int
) -> None:
    transfer = tether_token().encode_call("transfer", order["toAddress"], units)
    await transact(rpc, payer, token, transfer)


async def watch_until_final(gateway: Gateway, rpc: RpcClient, watcher: ChainWatcher) -> None:
    await rpc.call("anvil_mine", [hex(70)])  # below anvil's finalized tag
    for _ in range(200):
        report = await watcher.step()
        assert report.outcome not in (StepOutcome.RETRY, StepOutcome.FENCED), report
        if report.outcome == StepOutcome.IDLE:
            return
    raise AssertionError("watcher did not catch up")


def v1_is_the_gateways(hit: Hit, public_pem: str) -> bool:
    """The raw V1 check, without any merchant id: what a V1-only receiver did before."""
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signed = hit.headers["blockatm-request-time"].encode() + b"." + hit.body
    try:
        key.verify(
            base64.b64decode(hit.headers["blockatm-signature-v1"]),
            signed,
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        return False
    return True


async def test_merchant_a_cannot_pass_its_webhook_off_as_merchant_bs(
    gateway: Gateway,
    shop_b_endpoint: Receiver,
    rpc: RpcClient,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
) -> None:
    header = await fetch_header(rpc, "latest")
    assert header is not None
    gateway.clock.set_ms(header.time_ms)  # orders expire in chain time
    chain = gateway.ctx.registry.require(31337)
    watcher = ChainWatcher(
        chain,
        gateway.ctx.sessions,
        gateway.clock,
        rpc,
        gateway.ctx.orders,
        options=WatcherOptions(poll_interval=0.05),
    )
    assert (await watcher.step()).outcome != StepOutcome.RETRY  # cursor at the head

    shop_b = await new_shop(gateway, "Shop B", notify_url=shop_b_endpoint.url("webhooks"))
    shop_a = await new_shop(gateway, "Shop A")
    genuine = await gateway.create_order(shop_b, amount="42.5", orderNo="B-1001")
    # A copies B's order number and amount, and points its own order's webhooks at B.
    copied = await gateway.create_order(
        shop_a, amount="42.5", orderNo="B-1001", notifyUrl=shop_b_endpoint.url("webhooks")
    )
    assert copied["orderId"] != genuine["orderId"] and copied["orderNo"] == genuine["orderNo"]
    # B's customer pays B; A pays its own order (the money goes to A's own payout address).
    await pay(rpc, customer_accounts[0], dev_tokens["USDT"], genuine, 42_500_000)
    await pay(rpc, customer_accounts[1], dev_tokens["USDT"], copied, 42_500_000)
    await watch_until_final(gateway, rpc, watcher)

    async with make_worker(gateway.ctx, gateway.clock) as worker:
        await drive(gateway.ctx, gateway.clock, [worker], until_ms=gateway.clock.now_ms())

    def completed(order: dict[str, Any]) -> Hit:
        [hit] = [
            h
            for h in shop_b_endpoint.snapshot()
            if json.loads(h.body)["type"] == "order.completed"
            and json.loads(h.body)["data"]["orderId"] == order["orderId"]
        ]
        return hit

    forged, own = completed(copied), completed(genuine)
    forged_data, own_data = json.loads(forged.body)["data"], json.loads(own.body)["data"]
    assert forged_data["status"] == own_data["status"] == "completed"
    assert (forged_data["orderNo"], forged_data["amount"], forged_data["paidAmount"]) == (
        own_data["orderNo"],
        own_data["amount"],
        own_data["paidAmount"],
    )
    # What made the attack work: A's webhook carries the gateway's genuine V1 signature, the
    # same key as B's, so a receiver that checks V1 alone cannot tell them apart.
    signing_key = (await gateway.client.get("/api/v1/public/signing-key")).json()
    pem = signing_key["publicKeyPem"]
    assert v1_is_the_gateways(forged, pem) and v1_is_the_gateways(own, pem)
    assert forged.headers["blockatm-key-id"] == own.headers["blockatm-key-id"]
    assert json.loads(forged.body)["merchantId"] == shop_a.keys.merchant_id
    assert json.loads(own.body)["merchantId"] == shop_b.keys.merchant_id

    # B's receiver, with the SDK: V1 needs B's merchant id, and then A's webhook is refused.
    now = gateway.clock.now_ms() / 1000
    b_id = shop_b.keys.merchant_id
    with pytest.raises(TypeError, match="merchant_id"):
        verify_webhook(forged.headers, forged.body, public_key_pem=pem, now=now)
    with pytest.raises(WebhookVerificationError, match="not for this merchant"):
        verify_webhook(forged.headers, forged.body, public_key_pem=pem, merchant_id=b_id, now=now)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(
            forged.headers,
            forged.body,
            secret=shop_b.keys.webhook_secret,
            public_key_pem=pem,
            merchant_id=b_id,
            now=now,
        )
    event = verify_webhook(own.headers, own.body, public_key_pem=pem, merchant_id=b_id, now=now)
    assert event.type == "order.completed" and event.order is not None
    assert event.order.order_id == genuine["orderId"] and event.merchant_id == b_id
    verify_webhook(
        own.headers,
        own.body,
        secret=shop_b.keys.webhook_secret,
        public_key_pem=pem,
        merchant_id=b_id,
        now=now,
    )

    # B's receiver, with the verifier the README shows.
    docs = exec_block("README.md", "def verify_v1(")
    docs["time"] = types.SimpleNamespace(time=lambda: gateway.clock.now_ms() / 1000)
    forged_headers, own_headers = httpx.Headers(forged.headers), httpx.Headers(own.headers)
    assert docs["verify_v1"](forged_headers, forged.body, pem.encode(), b_id) is None
    assert docs["verify_v2"](forged_headers, forged.body, shop_b.keys.webhook_secret, b_id) is None
    accepted = docs["verify_v1"](own_headers, own.body, pem.encode(), b_id)
    assert accepted is not None and accepted["data"]["orderId"] == genuine["orderId"]
    accepted = docs["verify_v2"](own_headers, own.body, shop_b.keys.webhook_secret, b_id)
    assert accepted is not None and accepted["type"] == "order.completed"
