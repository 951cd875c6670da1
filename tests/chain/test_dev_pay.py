"""The dev chain's payer behind the cashier's "pay" button."""

from __future__ import annotations

import pytest

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.dev_pay import DevPayFailed, pay_from_dev_account
from stablegate.chain.evm.contracts import standard_token
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import eth_call
from stablegate.chain.registry import Chain

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]

DEPOSIT = "0x00000000000000000000000000000000000d3e70"


def dev_chain(rpc_url: str) -> Chain:
    return Chain(
        id=31337,
        name="anvil",
        network="anvil",
        confirmations=2,
        block_time=1,
        testnet=True,
        rpc_urls=(rpc_url,),
    )


async def balance(rpc: RpcClient, token: str, owner: str) -> int:
    erc20 = standard_token()
    raw = await eth_call(rpc, token, erc20.encode_call("balanceOf", owner))
    return int(erc20.decode_result("balanceOf", raw)[0])


async def test_pays_the_amount_to_the_address_and_returns_the_mined_hash(
    anvil: AnvilNode, rpc: RpcClient, dev_tokens: dict[str, str]
) -> None:
    chain = dev_chain(anvil.url)
    usdt = dev_tokens["USDT"]
    tx_hash = await pay_from_dev_account(chain, token=usdt, to=DEPOSIT, amount=1_234_567)
    receipt = await rpc.call("eth_getTransactionReceipt", [tx_hash])
    assert receipt is not None and receipt["status"] == "0x1"
    assert await balance(rpc, usdt, DEPOSIT) == 1_234_567


async def test_a_node_that_does_not_answer_is_a_dev_pay_failure(
    dev_tokens: dict[str, str],
) -> None:
    chain = dev_chain("http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DevPayFailed):
        await pay_from_dev_account(chain, token=dev_tokens["USDT"], to=DEPOSIT, amount=1)
