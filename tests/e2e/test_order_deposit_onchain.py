"""An order created through the API gets a deposit address the factory really deploys to.

Real anvil node, real app: the address the API promises before anything exists on chain is
where the forwarder lands, and flushing it pays the merchant's payout address.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from tests.chain_files import dev_chain_settings
from tests.support import NOW_MS, MerchantKeys, Signer

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.contracts import forwarder, forwarder_factory, tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import eth_call, get_code, transact
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]

PAYOUT = Account.create().address


@pytest_asyncio.fixture
async def chain_client(
    tmp_path: Path,
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    gateway_contracts: DeployedContracts,
) -> AsyncIterator[tuple[httpx.AsyncClient, Signer]]:
    settings = dev_chain_settings(tmp_path, anvil.url, gateway_contracts, dev_tokens)
    clock = FakeClock(NOW_MS)
    app = create_app(settings, clock=clock, migrate=True)
    ctx: GatewayContext = app.state.gateway
    await upgrade(ctx.engine)
    async with session_scope(ctx.sessions) as session:
        created = await create_merchant(
            session, ctx.secret_box, clock, name="Shop", payout_address=PAYOUT, chain_ids=[31337]
        )
    keys = MerchantKeys(
        created.merchant_id, created.api_key, created.secret_key, created.webhook_secret
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client, Signer(keys, clock)
    await ctx.engine.dispose()


async def test_api_deposit_address_is_where_the_factory_deploys_and_flush_pays_the_payout(
    chain_client: tuple[httpx.AsyncClient, Signer],
    rpc: RpcClient,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
) -> None:
    client, signer = chain_client
    body = json.dumps(
        {"chainId": 31337, "symbol": "USDT", "amount": "42.5", "orderNo": "e2e-1"}
    ).encode()
    path = "/api/v1/payment/createQrOrder"
    response = await client.post(path, content=body, headers=signer.headers("POST", path, body))
    assert response.status_code == 200, response.text
    order = response.json()
    deposit = order["toAddress"]
    salt = bytes.fromhex(order["depositSalt"][2:])
    assert await get_code(rpc, deposit) == b""  # nothing deployed until there is a sweep

    usdt = tether_token()
    customer = customer_accounts[0]
    await transact(
        rpc, customer, dev_tokens["USDT"], usdt.encode_call("transfer", deposit, 42_500_000)
    )

    factory = forwarder_factory()
    predicted = factory.decode_result(
        "predictAddress",
        await eth_call(
            rpc,
            order["factory"],
            factory.encode_call("predictAddress", order["payoutAddress"], salt),
        ),
    )[0]
    assert predicted.lower() == deposit.lower()

    stranger = Account.create()
    await rpc.call("anvil_setBalance", [stranger.address, hex(10**18)])
    await transact(
        rpc, stranger, order["factory"], factory.encode_call("deploy", order["payoutAddress"], salt)
    )
    assert await get_code(rpc, deposit) != b""

    await transact(rpc, stranger, deposit, forwarder().encode_call("flush", dev_tokens["USDT"]))

    async def balance(owner: str) -> int:
        data = await eth_call(rpc, dev_tokens["USDT"], usdt.encode_call("balanceOf", owner))
        return int(usdt.decode_result("balanceOf", data)[0])

    assert await balance(PAYOUT) == 42_500_000
    assert await balance(deposit) == 0
