"""Fixtures of the fault tests: a harness on the session's anvil node and a real database.

Every test here is ``slow``: ``make check`` leaves them to ``make test``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from eth_account.signers.local import LocalAccount
from tests.faults.fault_support import FaultHarness, open_harness

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient

FAULTS_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items: mark only those in this directory.
    for item in items:
        if item.path.is_relative_to(FAULTS_DIR):
            item.add_marker(pytest.mark.slow)


@pytest_asyncio.fixture
async def harness(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str,
    anvil: AnvilNode,
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    clean_chain: None,
) -> AsyncIterator[FaultHarness]:
    opened = await open_harness(
        tmp_path,
        database_url,
        upstream_url=anvil.url,
        rpc=rpc,
        contracts=(gateway_contracts.factory, gateway_contracts.implementation),
        tokens=dev_tokens,
        senders=customer_accounts,
        seed_name=request.node.name,
    )
    try:
        yield opened
    finally:
        await opened.close()
