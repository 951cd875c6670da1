"""ERC-20 Transfer logs: the topic, the filter for watched addresses, and decoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


def address_topic(address: str) -> str:
    """An address as a 32-byte log topic (lowercase hex)."""
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


@dataclass(frozen=True)
class TransferLog:
    """One ERC-20 Transfer, normalised from an eth_getLogs entry."""

    token: str  # checksummed contract address
    sender: str
    recipient: str
    amount: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str


def decode_transfer(log: dict[str, Any]) -> TransferLog | None:
    """The transfer a log records, or None for anything else.

    ERC-721 Transfers share the topic but index the token id as a fourth topic: skipped.
    A malformed log (wrong topic count, short data) is skipped rather than trusted.
    """
    topics = log.get("topics") or []
    if len(topics) != 3 or str(topics[0]).lower() != TRANSFER_TOPIC:
        return None
    data = str(log.get("data") or "0x")
    if len(data) != 66:
        return None
    if log.get("removed"):
        return None
    return TransferLog(
        token=str(to_checksum_address(str(log["address"]))),
        sender=str(to_checksum_address("0x" + str(topics[1])[-40:])),
        recipient=str(to_checksum_address("0x" + str(topics[2])[-40:])),
        amount=int(data, 16),
        tx_hash=str(log["transactionHash"]).lower(),
        log_index=int(str(log["logIndex"]), 16),
        block_number=int(str(log["blockNumber"]), 16),
        block_hash=str(log["blockHash"]).lower(),
    )
