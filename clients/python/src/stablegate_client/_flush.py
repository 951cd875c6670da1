"""Collect a deposit address without the gateway: one ``deployAndFlushOne`` transaction.

``ForwarderFactory.deployAndFlushOne(payout, depositSalt, token)`` deploys the order's forwarder
if it has no code yet and moves its whole ``token`` balance to ``payout``. The contracts allow
nothing else, so any funded key may send it: the sender pays gas and can never receive the funds.
The order object (and every webhook) carries ``factory``, ``payoutAddress``, ``depositSalt`` and
``tokenAddress``, which is all this needs.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import httpx

from stablegate_client._errors import FlushError
from stablegate_client._ethereum import (
    Eip1559Transaction,
    EthereumKey,
    abi_word,
    address_bytes,
    bytes32,
    checksum_address,
    function_selector,
)
from stablegate_client._keccak import keccak256
from stablegate_client._models import FlushResult

_GAS_MARGIN_PERCENT = 25
_DEFAULT_PRIORITY_FEE = 1_000_000_000  # 1 gwei, when the node has no eth_maxPriorityFeePerGas
_RECEIPT_POLL_SECONDS = 0.25

# Reverts worth a plain-language message (Forwarder / ForwarderFactory custom errors).
_REVERTS = {
    "NothingToFlush(address)": "the deposit address holds none of this token",
    "NotAToken(address)": "the token address is not a token contract on this chain",
    "TransferFailed(address)": "the token refused the transfer (paused or blacklisted?)",
    "BalanceNotReduced(address)": "the token transfer did not reduce the balance",
    "NotInitialised()": "the forwarder is not initialised",
    "AlreadyDeployed(address)": "the forwarder address is taken",
    "ZeroAddress()": "the payout address is zero",
}


@cache
def _revert_reasons() -> dict[bytes, str]:
    return {
        function_selector(sig): f"{sig.split('(')[0]}: {text}" for sig, text in _REVERTS.items()
    }


def deposit_salt(order_id: str) -> str:
    """An order's ``depositSalt`` from its ``orderId``: keccak256 of the UTF-8 bytes, as hex."""
    return "0x" + keccak256(order_id.encode("utf-8")).hex()


class _RpcError(FlushError):
    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.data = _revert_data(error.get("data"))
        message = str(error.get("message") or "error")
        reason = _revert_reasons().get(self.data[:4]) if self.data else None
        super().__init__(f"{method}: {reason or message}")


def _revert_data(value: Any) -> bytes | None:
    if isinstance(value, dict):  # some nodes nest it
        value = value.get("data")
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            return None
    return None


class _Rpc:
    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url = url
        self.http = http
        self.next_id = 0

    def call(self, method: str, params: list[Any]) -> Any:
        self.next_id += 1
        payload = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        try:
            response = self.http.post(self.url, json=payload)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise FlushError(f"{method}: RPC request failed: {exc}") from exc
        if not isinstance(answer, dict):
            raise FlushError(f"{method}: not a JSON-RPC answer")
        if answer.get("error") is not None:
            error = answer["error"]
            raise _RpcError(method, error if isinstance(error, dict) else {"message": str(error)})
        return answer.get("result")


def _hex_int(value: Any) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise FlushError(f"expected a hex quantity from the node, got {value!r}")
    return int(value, 16)


def _hex_bytes(value: Any) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise FlushError(f"expected hex data from the node, got {value!r}")
    return bytes.fromhex(value[2:])


def _flushed_amount(receipt: dict[str, Any], deposit: str, factory: str) -> tuple[int, bool]:
    """(amount from the forwarder's Flushed event, whether ForwarderDeployed was emitted)."""
    flushed_topic = "0x" + keccak256(b"Flushed(address,address,uint256)").hex()
    deployed_topic = "0x" + keccak256(b"ForwarderDeployed(address,address,bytes32)").hex()
    amount, deployed = 0, False
    for log in receipt.get("logs") or ():
        address = str(log.get("address", "")).lower()
        topics = [str(t).lower() for t in log.get("topics") or ()]
        if not topics:
            continue
        if address == deposit.lower() and topics[0] == flushed_topic:
            amount += int.from_bytes(_hex_bytes(log["data"]), "big")
        elif address == factory.lower() and topics[0] == deployed_topic:
            deployed = True
    return amount, deployed


def flush(
    rpc_url: str,
    factory: str,
    payout: str,
    salt: str | bytes,
    token: str,
    private_key: str | bytes,
    *,
    timeout: float = 120.0,
    http_client: httpx.Client | None = None,
) -> FlushResult:
    """Deploys the deposit forwarder of (payout, salt) if needed and flushes ``token`` to payout.

    ``private_key`` is any key with gas on the chain (hex or 32 bytes); it signs one EIP-1559
    transaction to ``factory``. The call is simulated first, so a deposit address with nothing to
    flush raises :class:`FlushError` without spending gas. Waits up to ``timeout`` seconds for the
    receipt. ``token`` ``0x000…0`` flushes the native coin.
    """
    factory = checksum_address(factory)
    payout = checksum_address(payout)
    token = checksum_address(token)
    salt_bytes = bytes32(salt)
    key = EthereumKey(private_key)
    http = http_client or httpx.Client(timeout=30.0)
    try:
        return _flush(_Rpc(rpc_url, http), key, factory, payout, salt_bytes, token, timeout)
    finally:
        if http_client is None:
            http.close()


def _flush(
    rpc: _Rpc,
    key: EthereumKey,
    factory: str,
    payout: str,
    salt: bytes,
    token: str,
    timeout: float,
) -> FlushResult:
    if _hex_bytes(rpc.call("eth_getCode", [factory, "latest"])) == b"":
        raise FlushError(f"no contract at factory address {factory} on this chain")
    predict = function_selector("predictAddress(address,bytes32)") + b"".join(
        (abi_word(address_bytes(payout)), abi_word(salt))
    )
    predicted = _hex_bytes(
        rpc.call("eth_call", [{"to": factory, "data": "0x" + predict.hex()}, "latest"])
    )
    deposit = checksum_address("0x" + predicted[12:32].hex())

    data = function_selector("deployAndFlushOne(address,bytes32,address)") + b"".join(
        (abi_word(address_bytes(payout)), abi_word(salt), abi_word(address_bytes(token)))
    )
    call = {"from": key.address, "to": factory, "data": "0x" + data.hex()}
    rpc.call("eth_call", [call, "latest"])  # a revert raises here, before any gas is spent
    gas = _hex_int(rpc.call("eth_estimateGas", [call])) * (100 + _GAS_MARGIN_PERCENT) // 100
    chain_id = _hex_int(rpc.call("eth_chainId", []))
    nonce = _hex_int(rpc.call("eth_getTransactionCount", [key.address, "pending"]))
    block = rpc.call("eth_getBlockByNumber", ["latest", False])
    base_fee = _hex_int(block.get("baseFeePerGas") or "0x0") if isinstance(block, dict) else 0
    try:
        tip = _hex_int(rpc.call("eth_maxPriorityFeePerGas", []))
    except FlushError:
        tip = _DEFAULT_PRIORITY_FEE
    tx = Eip1559Transaction(
        chain_id=chain_id,
        nonce=nonce,
        max_priority_fee_per_gas=tip,
        max_fee_per_gas=2 * base_fee + tip,
        gas=gas,
        to=factory,
        data=data,
    )
    raw = tx.sign(key)
    tx_hash = "0x" + keccak256(raw).hex()
    sent = rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
    if str(sent).lower() != tx_hash:
        raise FlushError(f"the node answered with transaction hash {sent}, expected {tx_hash}")

    deadline = time.monotonic() + timeout
    while (receipt := rpc.call("eth_getTransactionReceipt", [tx_hash])) is None:
        if time.monotonic() > deadline:
            raise FlushError(f"transaction {tx_hash} not mined after {timeout:g} s")
        time.sleep(_RECEIPT_POLL_SECONDS)
    if _hex_int(receipt["status"]) != 1:
        raise FlushError(f"transaction {tx_hash} reverted")
    amount, deployed = _flushed_amount(receipt, deposit, factory)
    return FlushResult(
        tx_hash=tx_hash,
        deposit_address=deposit,
        payout=payout,
        token=token,
        amount=amount,
        deployed=deployed,
        block_number=_hex_int(receipt["blockNumber"]),
        gas_used=_hex_int(receipt["gasUsed"]),
    )


def token_decimals(rpc_url: str, token: str, *, http_client: httpx.Client | None = None) -> int:
    """``token.decimals()``; raises :class:`FlushError` when the call fails."""
    http = http_client or httpx.Client(timeout=30.0)
    try:
        call = {"to": checksum_address(token), "data": "0x" + function_selector("decimals()").hex()}
        return int.from_bytes(_hex_bytes(_Rpc(rpc_url, http).call("eth_call", [call, "latest"])))
    finally:
        if http_client is None:
            http.close()
