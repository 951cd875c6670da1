"""The deposit factory of the chains file is checked on chain before a chain is watched.

A ForwarderFactory deployed by plain CREATE (not through the CREATE2 deployer) has another
address, and its constructor made another implementation than the canonical one.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from structlog.testing import capture_logs
from tests.watcher.conftest import WatchEnv

from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import forwarder_factory, standard_token
from stablegate.chain.evm.wallet import eth_call, transact
from stablegate.chain.registry import ChainRegistry
from stablegate.orders.context import OrderContext

pytestmark = pytest.mark.anvil


async def deploy_other_factory(env: WatchEnv, deployer: LocalAccount) -> str:
    receipt = await transact(env.rpc, deployer, None, forwarder_factory().deploy_code())
    factory = str(to_checksum_address(receipt["contractAddress"]))
    assert factory.lower() != create2.factory_address().lower()
    return factory


async def predicted(env: WatchEnv, factory: str, payout: str, salt_hex: str) -> str:
    artifact = forwarder_factory()
    raw = await eth_call(
        env.rpc,
        factory,
        artifact.encode_call("predictAddress", payout, bytes.fromhex(salt_hex[2:])),
    )
    return str(artifact.decode_result("predictAddress", raw)[0]).lower()


async def usdt_balance(env: WatchEnv, owner: str) -> int:
    erc20 = standard_token()
    raw = await eth_call(env.rpc, env.tokens["USDT"], erc20.encode_call("balanceOf", owner))
    return int(erc20.decode_result("balanceOf", raw)[0])


def use_chain(env: WatchEnv, **changes: str | None) -> None:
    env.chain = replace(env.chain, **changes)  # type: ignore[arg-type]
    env.orders = OrderContext(
        ChainRegistry({env.chain.id: env.chain}), "http://gw", env.orders.max_order_amount
    )
    env.watcher.chain = env.chain


async def test_a_factory_without_implementation_gets_its_own_and_its_deposits_can_be_emptied(
    env: WatchEnv, deployer_account: LocalAccount
) -> None:
    factory = await deploy_other_factory(env, deployer_account)
    use_chain(env, factory=factory, implementation=None)

    order = await env.order("10")
    assert order.factory == factory
    assert order.deposit_salt is not None
    # The gateway's address is the one the factory deploys to, so the payment can be collected.
    assert order.to_address.lower() == await predicted(
        env, factory, order.payout_address, order.deposit_salt
    )
    payout_before = await usdt_balance(env, order.payout_address)
    await env.pay(order, 10_000_000)
    await env.finalize()
    await env.sync()
    assert (await env.reload(order.id)).status == "completed"
    call = forwarder_factory().encode_call(
        "deployAndFlushOne",
        order.payout_address,
        bytes.fromhex(order.deposit_salt[2:]),
        env.tokens["USDT"],
    )
    await transact(env.rpc, deployer_account, factory, call)
    assert await usdt_balance(env, order.to_address) == 0
    assert await usdt_balance(env, order.payout_address) - payout_before == 10_000_000


async def test_a_factory_that_predicts_other_addresses_refuses_the_chain(
    env: WatchEnv, deployer_account: LocalAccount
) -> None:
    factory = await deploy_other_factory(env, deployer_account)
    # The chains file names the canonical implementation: the factory made another one.
    use_chain(env, factory=factory, implementation=create2.implementation_address())
    stop = asyncio.Event()
    with capture_logs() as logs:
        # Returns at once instead of watching: the chain is refused.
        await asyncio.wait_for(env.watcher.run_forever(stop), timeout=10)
    [alert] = [e for e in logs if e.get("event") == "operator_alert"]
    assert alert["alert"] == "chains file does not match the chain"
    assert f"the factory {factory} predicts" in alert["problem"]
    assert f"implementation() is {create2.create_address(factory, 1)}" in alert["problem"]
    assert any(e.get("event") == "watcher_refused" for e in logs)


async def test_no_factory_contract_refuses_the_chain(env: WatchEnv) -> None:
    use_chain(env, factory="0x000000000000000000000000000000000000bEEF", implementation=None)
    stop = asyncio.Event()
    with capture_logs() as logs:
        await asyncio.wait_for(env.watcher.run_forever(stop), timeout=10)
    [alert] = [e for e in logs if e.get("event") == "operator_alert"]
    assert "no contract at the factory address" in alert["problem"]
