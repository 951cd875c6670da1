"""The payout code check: which chains see code at an address, and when that needs --force."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import PAYOUT

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.registry import Chain, ChainRegistry
from stablegate.errors import GatewayError
from stablegate.merchants.payout_check import (
    CodePresence,
    PayoutCodeCheck,
    code_presence,
    mixed_code_warning,
)


def test_mixed_code_warning() -> None:
    assert mixed_code_warning({1: True, 56: False}) is not None
    assert mixed_code_warning({1: True, 56: True}) is None
    assert mixed_code_warning({1: False, 56: None}) is None


@pytest.mark.anvil
async def test_code_presence_reads_the_chain(
    anvil: AnvilNode, gateway_contracts: DeployedContracts, tmp_path: Path
) -> None:
    registry = ChainRegistry(
        {
            31337: Chain(
                id=31337,
                name="dev",
                network="dev",
                confirmations=2,
                block_time=1,
                rpc_urls=(anvil.url,),
            ),
            56: Chain(id=56, name="bsc", network="bsc", confirmations=15, block_time=3),
        }
    )
    presence = await code_presence(registry, [31337, 56], gateway_contracts.factory)
    assert presence == {31337: True, 56: None}
    assert (await code_presence(registry, [31337], PAYOUT)) == {31337: False}
    check = PayoutCodeCheck.through(registry)
    assert await check.run([31337, 56], gateway_contracts.factory) is None  # 56 cannot tell


def answers(presence: CodePresence) -> PayoutCodeCheck:
    async def read_code(chain_ids: list[int], _address: str) -> CodePresence:
        return {chain_id: presence[chain_id] for chain_id in chain_ids}

    return PayoutCodeCheck(read_code=read_code)


async def test_the_check_refuses_a_mixed_answer_unless_forced() -> None:
    check = answers({1: True, 56: False, 137: True})
    assert await check.run([1, 137], PAYOUT) is None
    with pytest.raises(GatewayError) as refused:
        await check.run([1, 56], PAYOUT)
    assert refused.value.code == "payout_code_mismatch"
    assert refused.value.message == (
        "the payout address is a contract on chain(s) [1] but has no code on chain(s) [56]: "
        "a contract wallet there is probably not the merchant's; check it, then repeat with "
        "--force"
    )
    forced = PayoutCodeCheck(read_code=check.read_code, force=True)
    assert await forced.run([1, 56], PAYOUT) == mixed_code_warning({1: True, 56: False})
