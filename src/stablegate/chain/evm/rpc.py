"""A small async Ethereum JSON-RPC client, and sending locally signed EIP-1559 transactions.

Raw RPC data stays raw (hex strings in TypedDicts); callers convert what they use.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, NotRequired, TypedDict

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

# Fee cap when the node does not answer eth_maxPriorityFeePerGas.
DEFAULT_PRIORITY_FEE = 1_000_000_000
# eth_estimateGas finds the least gas that does not revert; a margin covers state drift.
GAS_MARGIN_PERCENT = 20


class RpcError(Exception):
    """The node answered with a JSON-RPC error; ``data`` holds revert data when there is some."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def revert_data(self) -> bytes | None:
        """The revert payload of a failed eth_call/eth_estimateGas, if the node returned it."""
        data = self.data
        if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                return None
        return None


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


class RpcClient:
    """JSON-RPC over HTTP. Uses the first URL; failover across ``urls`` is not done yet."""

    def __init__(self, urls: list[str], *, timeout: float = 10.0) -> None:
        if not urls:
            raise ValueError("at least one RPC URL is required")
        self.urls = list(urls)
        self._http = httpx.AsyncClient(timeout=timeout)
        self._ids = itertools.count(1)

    async def call(self, method: str, params: list[Any]) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        response = await self._http.post(self.urls[0], json=request)
        try:
            body = response.json()
        except ValueError:
            response.raise_for_status()
            raise RpcError(-32700, f"{method}: response is not JSON") from None
        if not isinstance(body, dict):
            response.raise_for_status()
            raise RpcError(-32603, f"{method}: unexpected response {body!r}")
        if body.get("error") is not None:
            error = body["error"]
            raise RpcError(
                int(error.get("code", -32603)), str(error.get("message")), error.get("data")
            )
        response.raise_for_status()
        return body.get("result")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


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
    except RpcError:
        return DEFAULT_PRIORITY_FEE
