"""createQrOrder on a chain whose deposit factory (on a real anvil node) disagrees with the
chains file is refused with ``chain_unavailable``: its deposit addresses could never be emptied."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from fastapi import FastAPI
from structlog.testing import capture_logs
from tests.api.test_orders_api import CREATE, count_orders, post
from tests.chain_files import UNREACHABLE_RPC, dev_tokens_of, write_chains_file
from tests.support import PAYOUT, Signer

from stablegate.api.context import GatewayContext
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import forwarder_factory
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import eth_call, transact

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]


@pytest_asyncio.fixture
async def other_factory(rpc: RpcClient, deployer_account: LocalAccount) -> str:
    """A ForwarderFactory deployed by plain CREATE: its own address and implementation."""
    receipt = await transact(rpc, deployer_account, None, forwarder_factory().deploy_code())
    return str(to_checksum_address(receipt["contractAddress"]))


@pytest.fixture
def chains_file(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    other_factory: str,
) -> Path:
    # "mismatched": the chains file names the canonical implementation for another factory.
    implementation = (
        {"implementation": create2.implementation_address()}
        if request.param == "mismatched"
        else {}
    )
    # "unreachable": no node answers, so the factory cannot be checked.
    url = UNREACHABLE_RPC if request.param == "unreachable" else anvil.url
    return write_chains_file(
        tmp_path / "chains.toml",
        [url],
        factory=other_factory,
        **implementation,
        tokens=dev_tokens_of(dev_tokens, "USDT"),
    )


PAYLOAD = {"chainId": "31337", "symbol": "USDT", "amount": "5"}


@pytest.mark.parametrize("chains_file", ["mismatched"], indirect=True)
async def test_a_factory_that_predicts_other_addresses_refuses_orders(
    client: httpx.AsyncClient, signer: Signer, gateway: GatewayContext, other_factory: str
) -> None:
    with capture_logs() as logs:
        response = await post(client, signer, CREATE, PAYLOAD)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "chain_unavailable"
    assert await count_orders(gateway) == 0
    [alert] = [e for e in logs if e.get("event") == "operator_alert"]
    assert f"the factory {other_factory} predicts" in alert["problem"]
    # Asked once: the verdict stands for the process.
    again = await post(client, signer, CREATE, {**PAYLOAD, "amount": "6"})
    assert again.json()["error"]["code"] == "chain_unavailable"
    assert await count_orders(gateway) == 0


@pytest.mark.parametrize("chains_file", ["its_own"], indirect=True)
async def test_a_factory_without_implementation_gets_orders_at_its_own_addresses(
    client: httpx.AsyncClient, signer: Signer, rpc: RpcClient, other_factory: str
) -> None:
    response = await post(client, signer, CREATE, PAYLOAD)
    assert response.status_code == 200, response.text
    order = response.json()
    assert order["factory"] == other_factory
    artifact = forwarder_factory()
    raw = await eth_call(
        rpc,
        other_factory,
        artifact.encode_call("predictAddress", PAYOUT, bytes.fromhex(order["depositSalt"][2:])),
    )
    assert order["toAddress"] == to_checksum_address(
        artifact.decode_result("predictAddress", raw)[0]
    )


@pytest.mark.parametrize("chains_file", ["unreachable"], indirect=True)
async def test_a_factory_nobody_could_check_yet_takes_no_orders(
    client: httpx.AsyncClient, signer: Signer, gateway: GatewayContext
) -> None:
    response = await post(client, signer, CREATE, PAYLOAD)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "chain_unavailable"
    assert "could not be checked yet" in error["message"]
    assert await count_orders(gateway) == 0


@pytest.mark.parametrize("chains_file", ["mismatched"], indirect=True)
async def test_the_api_logs_a_mismatched_factory_at_start_up(
    app: FastAPI, gateway: GatewayContext, other_factory: str
) -> None:
    with capture_logs() as logs:
        async with app.router.lifespan_context(app):
            assert gateway.factory_checks.startup is not None
            await gateway.factory_checks.startup
            assert gateway.factory_checks.refused(31337) is not None
    [alert] = [e for e in logs if e.get("event") == "operator_alert"]
    assert alert["chain_id"] == 31337
    assert f"the factory {other_factory} predicts" in alert["problem"]
