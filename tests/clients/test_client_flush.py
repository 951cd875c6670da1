"""``flush`` on a real anvil node: a merchant collects a paid order's funds without the gateway.

The order comes from a real gateway (its API promises the deposit address); the payment is a real
USDT transfer; the SDK then signs and sends ForwarderFactory.deployAndFlushOne itself (its own
keccak, ABI, RLP and secp256k1), from a fresh key that holds only gas.
"""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from stablegate_client import AsyncClient, FlushError, Order, deposit_salt, flush
from stablegate_client._ethereum import Eip1559Transaction, EthereumKey
from stablegate_client._keccak import keccak256
from stablegate_client.cli import main
from tests.chain_files import write_dev_chains_file
from tests.clients.live_gateway import Gateway, StartGateway

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import eth_call, get_balance, to_int, transact, wait_receipt

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]

USDT = tether_token()


@pytest.fixture
def chain_gateway(
    tmp_path: Path,
    start_gateway: StartGateway,
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    gateway_contracts: DeployedContracts,
) -> Gateway:
    chains = write_dev_chains_file(
        tmp_path / "anvil-chains.toml", anvil.url, gateway_contracts, dev_tokens
    )
    return start_gateway(chains=chains, payout=Account.create().address)


async def create_order(gateway: Gateway, amount: str) -> Order:
    async with AsyncClient(
        gateway.url,
        gateway.keys.api_key,
        secret_key=gateway.keys.secret_key,
        now_ms=gateway.clock.now_ms,
    ) as client:
        return await client.create_order(31337, "USDT", amount)


async def usdt_balance(rpc: RpcClient, token: str, owner: str) -> int:
    data = await eth_call(rpc, token, USDT.encode_call("balanceOf", owner))
    return int(USDT.decode_result("balanceOf", data)[0])


async def pay(rpc: RpcClient, customer: LocalAccount, token: str, to: str, amount: int) -> None:
    await transact(rpc, customer, token, USDT.encode_call("transfer", to, amount))


async def gas_key(rpc: RpcClient) -> str:
    """A fresh key that holds only gas (0.1 ETH) and no tokens."""
    key = "0x" + os.urandom(32).hex()
    await rpc.call("anvil_setBalance", [EthereumKey(key).address, hex(10**17)])
    return key


async def test_flush_collects_a_paid_order_without_the_gateway(
    chain_gateway: Gateway,
    rpc: RpcClient,
    anvil: AnvilNode,
    customer_accounts: list[LocalAccount],
) -> None:
    order = await create_order(chain_gateway, "42.5")
    assert order.factory is not None and order.deposit_salt is not None
    assert order.deposit_salt == deposit_salt(order.order_id)
    token, payout = order.token_address, order.payout_address
    await pay(rpc, customer_accounts[0], token, order.to_address, 42_500_000)
    key = await gas_key(rpc)

    result = await asyncio.to_thread(
        flush, anvil.url, order.factory, payout, order.deposit_salt, token, key
    )
    assert result.deployed and result.amount == 42_500_000
    assert result.deposit_address == order.to_address
    assert await usdt_balance(rpc, token, payout) == 42_500_000
    assert await usdt_balance(rpc, token, order.to_address) == 0
    sent = await rpc.call("eth_getTransactionByHash", [result.tx_hash])
    assert sent["from"].lower() == EthereumKey(key).address.lower()
    assert sent["to"].lower() == order.factory.lower() and sent["type"] == "0x2"

    # A later payment to the same order: the forwarder exists now, so only the flush runs.
    await pay(rpc, customer_accounts[1], token, order.to_address, 1_000_000)
    again = await asyncio.to_thread(
        flush, anvil.url, order.factory, payout, order.deposit_salt, token, key
    )
    assert not again.deployed and again.amount == 1_000_000
    assert await usdt_balance(rpc, token, payout) == 43_500_000

    # Nothing left: refused during simulation, before any gas is spent.
    nonce = await rpc.call("eth_getTransactionCount", [EthereumKey(key).address, "latest"])
    with pytest.raises(FlushError, match="NothingToFlush"):
        await asyncio.to_thread(
            flush, anvil.url, order.factory, payout, order.deposit_salt, token, key
        )
    assert await rpc.call("eth_getTransactionCount", [EthereumKey(key).address, "latest"]) == nonce


async def test_flush_refuses_an_address_without_a_factory(
    anvil: AnvilNode, rpc: RpcClient, dev_tokens: dict[str, str]
) -> None:
    key = await gas_key(rpc)
    nowhere = Account.create().address
    with pytest.raises(FlushError, match="no contract at factory"):
        await asyncio.to_thread(
            flush, anvil.url, nowhere, nowhere, "0x" + "11" * 32, dev_tokens["USDT"], key
        )


async def test_the_flush_command(
    chain_gateway: Gateway,
    rpc: RpcClient,
    anvil: AnvilNode,
    customer_accounts: list[LocalAccount],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    order = await create_order(chain_gateway, "7.25")
    assert order.factory is not None and order.deposit_salt is not None
    await pay(rpc, customer_accounts[2], order.token_address, order.to_address, 7_250_000)
    common = ["--rpc", anvil.url, "--factory", order.factory, "--payout", order.payout_address]
    common += ["--token", order.token_address]

    # The key never comes from argv: without the variable the command refuses to run.
    monkeypatch.delenv("STABLEGATE_CLIENT_PRIVATE_KEY", raising=False)
    assert await asyncio.to_thread(main, ["flush", *common, "--order-id", order.order_id]) == 2
    assert "STABLEGATE_CLIENT_PRIVATE_KEY" in capsys.readouterr().err

    monkeypatch.setenv("MY_GAS_KEY", await gas_key(rpc))
    argv = ["flush", *common, "--order-id", order.order_id, "--private-key-env", "MY_GAS_KEY"]
    assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["amount"] == "7.250000" and printed["amountBaseUnits"] == "7250000"
    assert printed["deployed"] is True and printed["depositAddress"] == order.to_address
    receipt = await wait_receipt(rpc, printed["txHash"])
    assert to_int(receipt["status"]) == 1
    assert Decimal(printed["amount"]) == order.amount

    # A second payment, flushed with the plain-text output.
    await pay(rpc, customer_accounts[2], order.token_address, order.to_address, 1_000_000)
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("tx 0x") and "moved 1000000 base units (1.000000)" in out

    # Nothing left to move: exit status 1 and the reason.
    argv[argv.index("--order-id") : argv.index("--order-id") + 2] = ["--salt", order.deposit_salt]
    assert await asyncio.to_thread(main, argv) == 1
    assert "NothingToFlush" in capsys.readouterr().err


async def test_transactions_signed_by_the_sdk_are_accepted_by_anvil(
    rpc: RpcClient, anvil: AnvilNode
) -> None:
    key = EthereumKey("0x" + os.urandom(32).hex())
    await rpc.call("anvil_setBalance", [key.address, hex(10**18)])
    recipient = Account.create().address
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    base_fee = to_int(block["baseFeePerGas"])
    for nonce in range(3):
        tx = Eip1559Transaction(
            chain_id=anvil.chain_id,
            nonce=nonce,
            max_priority_fee_per_gas=10**9,
            max_fee_per_gas=2 * base_fee + 10**9,
            gas=21_000,
            to=recipient,
            value=10**15 * (nonce + 1),
        )
        raw = tx.sign(key)
        tx_hash = await rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        assert tx_hash == "0x" + keccak256(raw).hex()
        assert to_int((await wait_receipt(rpc, tx_hash))["status"]) == 1
        sent = await rpc.call("eth_getTransactionByHash", [tx_hash])
        assert sent["from"].lower() == key.address.lower()
    assert await get_balance(rpc, recipient) == 6 * 10**15
