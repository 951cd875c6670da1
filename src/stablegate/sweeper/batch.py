"""The one call the sweeper makes: ``ForwarderFactory.deployAndFlush(Item[])``, and what its
receipt says per item.

Funds can only reach the payout address: each item carries (payout, depositSalt, token) and the
factory derives the forwarder from (payout, depositSalt), so a wrong payout names another, empty
forwarder. :func:`verified_items` also refuses items whose deposit address does not match, before
anything is signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import (
    DecodedError,
    forwarder,
    forwarder_factory,
    standard_token,
    tether_token,
)
from stablegate.chain.evm.wallet import TransactionReceipt, to_int
from stablegate.sweeper.fees import Fees

NATIVE = "0x0000000000000000000000000000000000000000"

# Revert strings of tokens that will not change by waiting: the payout or the deposit is barred.
_PERMANENT_HINTS = ("blacklist", "blocklist", "blocked", "frozen", "sanction", "denied")


@dataclass(frozen=True)
class SignedBatch:
    nonce: int
    tx_hash: str
    raw_tx: str
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_limit: int


@dataclass(frozen=True)
class FlushItem:
    payout_address: str
    deposit_salt: bytes
    token_address: str
    deposit_address: str  # what the factory will derive; checked by verified_items

    @property
    def key(self) -> tuple[str, str]:
        return (self.deposit_address.lower(), self.token_address.lower())


def encode_batch(items: Sequence[FlushItem]) -> bytes:
    """Calldata of ``deployAndFlush`` for ``items``, in order."""
    return forwarder_factory().encode_call(
        "deployAndFlush",
        [
            (
                to_checksum_address(i.payout_address),
                i.deposit_salt,
                to_checksum_address(i.token_address),
            )
            for i in items
        ],
    )


def derived_deposit(factory: str, implementation: str, item: FlushItem) -> str:
    return create2.forwarder_address(
        factory, implementation, item.payout_address, item.deposit_salt
    )


def verified_items(
    factory: str, implementation: str, items: Sequence[FlushItem]
) -> tuple[list[FlushItem], list[FlushItem]]:
    """(items whose (payout, salt) derive their deposit address, items that do not)."""
    good: list[FlushItem] = []
    bad: list[FlushItem] = []
    for item in items:
        derived = derived_deposit(factory, implementation, item)
        (good if derived.lower() == item.deposit_address.lower() else bad).append(item)
    return good, bad


class Verdict(StrEnum):
    DONE = "done"
    RETRY = "retry"
    STUCK = "stuck"


@dataclass(frozen=True)
class ItemOutcome:
    """One ItemFlushed or ItemFailed event of a mined batch."""

    index: int
    deposit_address: str
    token_address: str
    flushed: bool
    amount: int
    reason: bytes

    @property
    def key(self) -> tuple[str, str]:
        return (self.deposit_address.lower(), self.token_address.lower())


def item_outcomes(receipt: TransactionReceipt, factory: str) -> list[ItemOutcome]:
    """The per-item events the factory emitted in this receipt (other contracts' logs ignored)."""
    artifact = forwarder_factory()
    outcomes: list[ItemOutcome] = []
    for log in receipt["logs"]:
        if log["address"].lower() != factory.lower():
            continue
        topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
        event = artifact.decode_event(topics, bytes.fromhex(log["data"][2:]))
        if event is None or event.name not in ("ItemFlushed", "ItemFailed"):
            continue
        flushed = event.name == "ItemFlushed"
        outcomes.append(
            ItemOutcome(
                index=int(event.args["index"]),
                deposit_address=str(to_checksum_address(event.args["forwarder"])),
                token_address=str(to_checksum_address(event.args["token"])),
                flushed=flushed,
                amount=int(event.args["amount"]) if flushed else 0,
                reason=b"" if flushed else bytes(event.args["reason"]),
            )
        )
    return outcomes


def decode_reason(reason: bytes) -> DecodedError | None:
    for artifact in (forwarder(), forwarder_factory(), tether_token(), standard_token()):
        decoded = artifact.decode_error(reason)
        if decoded is not None:
            return decoded
    return None


def describe(reason: bytes) -> str:
    decoded = decode_reason(reason)
    if decoded is None:
        return "0x" + reason.hex() if reason else "reverted without a reason"
    args = ", ".join(str(a) for a in decoded.args)
    return f"{decoded.name}({args})"


def judge_failure(reason: bytes) -> Verdict:
    """What an ItemFailed means for the item.

    Nothing to flush: someone (the merchant's own flush, an earlier sweep) already emptied it.
    A token that is not one, or a revert naming a blacklist: waiting will not help. Anything
    else (paused token, a token returning false): try again later.
    """
    decoded = decode_reason(reason)
    if decoded is None:
        return Verdict.RETRY
    if decoded.name == "NothingToFlush":
        return Verdict.DONE
    if decoded.name == "NotAToken":
        return Verdict.STUCK
    if decoded.name == "Error" and decoded.args:
        text = str(decoded.args[0]).lower()
        if any(hint in text for hint in _PERMANENT_HINTS):
            return Verdict.STUCK
    return Verdict.RETRY


def out_of_gas_index(revert_data: bytes | None) -> int | None:
    """The item index of ``ItemOutOfGas(index)``: that item alone exhausts the gas."""
    if not revert_data:
        return None
    decoded = forwarder_factory().decode_error(revert_data)
    if decoded is None or decoded.name != "ItemOutOfGas":
        return None
    return int(decoded.args[0])


def fee_paid(receipt: TransactionReceipt) -> int:
    return to_int(receipt["gasUsed"]) * to_int(receipt.get("effectiveGasPrice") or "0x0")


def sign_batch(
    relayer: LocalAccount,
    chain_id: int,
    factory: str,
    nonce: int,
    gas_limit: int,
    fees: Fees,
    data: bytes,
) -> SignedBatch:
    """An EIP-1559 transaction to the factory, signed locally; nothing is sent."""
    signed = relayer.sign_transaction(
        {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "gas": gas_limit,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            "to": to_checksum_address(factory),
            "value": 0,
            "data": data,
        }
    )
    return SignedBatch(
        nonce=nonce,
        tx_hash="0x" + bytes(signed.hash).hex(),
        raw_tx="0x" + bytes(signed.raw_transaction).hex(),
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        gas_limit=gas_limit,
    )


def calldata_of(raw_tx: str) -> bytes:
    """The input data of a stored raw transaction (to re-sign it with other fees)."""
    unsigned = TypedTransaction.from_bytes(HexBytes(raw_tx)).as_dict()
    return bytes(unsigned["data"])
