"""Helpers over :class:`RpcClient` for one account's view of the chain: reading (chain id,
code, balance, ``eth_call``) and sending locally signed EIP-1559 transactions.

Raw RPC data stays raw (hex strings in TypedDicts); callers convert what they use.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NotRequired, TypedDict

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError, RpcUnavailable

# Fee cap when the node does not answer eth_maxPriorityFeePerGas.
DEFAULT_PRIORITY_FEE = 1_000_000_000
# eth_estimateGas finds the least gas that does not revert; a margin covers state drift.
GAS_MARGIN_PERCENT = 20


class TransactionReverted(Exception):
    def __init__(self, receipt: TransactionReceipt) -> None:
        super().__init__(f"transaction {receipt['transactionHash']} reverted")
        self.receipt = receipt


class Log(TypedDict):
    address: str
    topics: list[str]
    data: str
    blockNumber: str
    blockHash: str
    transactionHash: str
    logIndex: str
    removed: NotRequired[bool]


class TransactionReceipt(TypedDict):
    transactionHash: str
    blockNumber: str
    blockHash: str
    status: str  # "0x1" success, "0x0" reverted
    gasUsed: str
    effectiveGasPrice: str
    contractAddress: str | None
    logs: list[Log]


def to_int(value: str) -> int:
    return int(value, 16)


async def chain_id(rpc: RpcClient) -> int:
    return to_int(await rpc.call("eth_chainId", []))


async def get_code(rpc: RpcClient, address: str, block: str = "latest") -> bytes:
    return bytes.fromhex((await rpc.call("eth_getCode", [address, block]))[2:])


async def get_balance(rpc: RpcClient, address: str, block: str = "latest") -> int:
    return to_int(await rpc.call("eth_getBalance", [address, block]))


async def eth_call(
    rpc: RpcClient, to: str, data: bytes, *, sender: str | None = None, block: str = "latest"
) -> bytes:
    """Runs a call without a transaction; a revert raises :class:`RpcError` with revert data."""
    call: dict[str, str] = {"to": to, "data": "0x" + data.hex()}
    if sender is not None:
        call["from"] = sender
    return bytes.fromhex((await rpc.call("eth_call", [call, block]))[2:])


async def send_transaction(
    rpc: RpcClient,
    account: LocalAccount,
    to: str | None,
    data: bytes = b"",
    *,
    value: int = 0,
    gas: int | None = None,
) -> str:
    """Signs an EIP-1559 transaction locally and broadcasts it; returns its hash.

    ``to=None`` creates a contract. Nonce (pending), chain id, fees and, unless ``gas`` is given,
    the gas limit come from the node; an estimate that reverts raises :class:`RpcError`.
    """
    sender = account.address
    tx_fields: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
    if to is not None:
        tx_fields["to"] = to_checksum_address(to)
    nonce, cid, block, tip = await asyncio.gather(
        rpc.call("eth_getTransactionCount", [sender, "pending"]),
        rpc.call("eth_chainId", []),
        rpc.call("eth_getBlockByNumber", ["latest", False]),
        _priority_fee(rpc),
    )
    if gas is None:
        estimate = to_int(await rpc.call("eth_estimateGas", [tx_fields]))
        gas = estimate * (100 + GAS_MARGIN_PERCENT) // 100
    base_fee = to_int(block.get("baseFeePerGas") or "0x0")
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": to_int(cid),
        "nonce": to_int(nonce),
        "gas": gas,
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 2 * base_fee + tip,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    signed = account.sign_transaction(tx)
    return str(await rpc.call("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()]))


async def wait_receipt(
    rpc: RpcClient,
    tx_hash: str,
    timeout: float = 30,  # noqa: ASYNC109 (a deadline for the receipt, not for one await)
    poll_interval: float = 0.05,
) -> TransactionReceipt:
    """Polls until the transaction is mined; raises :class:`TimeoutError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        receipt: TransactionReceipt | None = await rpc.call("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return receipt
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no receipt for {tx_hash} after {timeout}s")
        await asyncio.sleep(poll_interval)


async def transact(
    rpc: RpcClient,
    account: LocalAccount,
    to: str | None,
    data: bytes = b"",
    *,
    value: int = 0,
    gas: int | None = None,
    timeout: float = 30,  # noqa: ASYNC109 (a deadline for the receipt, not for one await)
) -> TransactionReceipt:
    """Sends, waits, and raises :class:`TransactionReverted` unless the receipt says success."""
    tx_hash = await send_transaction(rpc, account, to, data, value=value, gas=gas)
    receipt = await wait_receipt(rpc, tx_hash, timeout=timeout)
    if to_int(receipt["status"]) != 1:
        raise TransactionReverted(receipt)
    return receipt


async def _priority_fee(rpc: RpcClient) -> int:
    try:
        return to_int(await rpc.call("eth_maxPriorityFeePerGas", []))
    except RpcUnavailable:
        raise
    except RpcError:  # the node does not know the method
        return DEFAULT_PRIORITY_FEE
