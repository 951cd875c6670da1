"""Chain fixtures (a pytest plugin loaded by tests/conftest.py): one anvil node per test session, the gateway contracts and the dev tokens.

The node and everything deployed on it are session-scoped (async fixtures on the session event
loop), so tests using them are marked ``pytest.mark.asyncio(loop_scope="session")``. Tests that
change chain state use ``clean_chain``, which reverts the node to a snapshot afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS, AnvilNode
from stablegate.chain.evm.deploy import (
    DeployedContracts,
    deploy_dev_tokens,
    deploy_gateway_contracts,
)
from stablegate.chain.evm.rpc import RpcClient


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def rpc(anvil: AnvilNode) -> AsyncIterator[RpcClient]:
    client = RpcClient([anvil.url])
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def deployer_account() -> LocalAccount:
    """anvil account 0: deploys the gateway contracts and owns the dev tokens."""
    account: LocalAccount = Account.from_key(ANVIL_DEFAULT_KEYS[0])
    return account


@pytest.fixture(scope="session")
def customer_accounts() -> list[LocalAccount]:
    """anvil accounts 1-3: hold dev tokens and pay orders."""
    return [Account.from_key(key) for key in ANVIL_DEFAULT_KEYS[1:4]]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateway_contracts(rpc: RpcClient, deployer_account: LocalAccount) -> DeployedContracts:
    return await deploy_gateway_contracts(rpc, deployer_account)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_tokens(
    rpc: RpcClient, deployer_account: LocalAccount, customer_accounts: list[LocalAccount]
) -> dict[str, str]:
    """symbol -> address of the dev ``USDT``, ``USDC`` and ``USDT18``."""
    holders = [account.address for account in customer_accounts]
    return await deploy_dev_tokens(rpc, deployer_account, holders)


@pytest_asyncio.fixture(loop_scope="session")
async def clean_chain(
    rpc: RpcClient, gateway_contracts: DeployedContracts, dev_tokens: dict[str, str]
) -> AsyncIterator[None]:
    """Reverts the node to its state before the test (contracts and tokens deployed)."""
    snapshot = await rpc.call("evm_snapshot", [])
    yield
    assert await rpc.call("evm_revert", [snapshot]) is True
