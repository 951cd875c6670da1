"""Sweep items and sweep transactions as state tables, in the style of orders/state.py.

The sweeper's services ask :func:`item_transition` / :func:`tx_transition` for the next status;
tests enumerate :data:`ITEM_TRANSITIONS` and :data:`TX_TRANSITIONS`. ``None`` is a row not
yet written.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stablegate.models.sweep import SweepItemStatus, SweepTxStatus


class ItemTrigger(StrEnum):
    OPENED = "opened"  # final credited money at the deposit: a new item, or a done one reopened
    SIGNED = "signed"  # put in a signed batch transaction
    FLUSHED = "flushed"  # its Flushed event in the mined batch
    ALREADY_EMPTY = "already_empty"  # nothing left to flush: nothing lost, nothing to repeat
    FAILED_RETRY = "failed_retry"  # failed, attempts left: due again after a delay
    FAILED_STUCK = "failed_stuck"  # failed for good: funds wait for an operator
    RELEASED = "released"  # its transaction can never mine (nonce taken by another)
    REQUEUED = "requeued"  # the operator, once the cause is fixed


class TxTrigger(StrEnum):
    SIGNED = "signed"  # stored before it is broadcast
    BROADCAST = "broadcast"  # a node accepted it
    FEE_BUMPED = "fee_bumped"  # the same nonce re-signed with higher fees
    MINED = "mined"  # receipt status 1
    REVERTED = "reverted"  # receipt status 0
    NONCE_TAKEN = "nonce_taken"  # a transaction the sweeper did not sign used the nonce


@dataclass(frozen=True)
class ItemTransition:
    source: SweepItemStatus | None
    trigger: ItemTrigger
    target: SweepItemStatus


@dataclass(frozen=True)
class TxTransition:
    source: SweepTxStatus | None
    trigger: TxTrigger
    target: SweepTxStatus


# What a batch picks up; and what can fail (refused before signing, or failed in the batch).
_DUE = (SweepItemStatus.PENDING, SweepItemStatus.RETRY)
_FAILABLE = (*_DUE, SweepItemStatus.SENT)

ITEM_TRANSITIONS: tuple[ItemTransition, ...] = (
    ItemTransition(None, ItemTrigger.OPENED, SweepItemStatus.PENDING),
    ItemTransition(SweepItemStatus.DONE, ItemTrigger.OPENED, SweepItemStatus.PENDING),
    *(ItemTransition(s, ItemTrigger.SIGNED, SweepItemStatus.SENT) for s in _DUE),
    ItemTransition(SweepItemStatus.SENT, ItemTrigger.FLUSHED, SweepItemStatus.DONE),
    *(ItemTransition(s, ItemTrigger.ALREADY_EMPTY, SweepItemStatus.DONE) for s in _FAILABLE),
    *(ItemTransition(s, ItemTrigger.FAILED_RETRY, SweepItemStatus.RETRY) for s in _FAILABLE),
    *(ItemTransition(s, ItemTrigger.FAILED_STUCK, SweepItemStatus.STUCK) for s in _FAILABLE),
    ItemTransition(SweepItemStatus.SENT, ItemTrigger.RELEASED, SweepItemStatus.PENDING),
    ItemTransition(SweepItemStatus.STUCK, ItemTrigger.REQUEUED, SweepItemStatus.PENDING),
)

UNRESOLVED_TX: tuple[SweepTxStatus, ...] = (SweepTxStatus.SIGNED, SweepTxStatus.BROADCAST)

TX_TRANSITIONS: tuple[TxTransition, ...] = (
    TxTransition(None, TxTrigger.SIGNED, SweepTxStatus.SIGNED),
    TxTransition(SweepTxStatus.SIGNED, TxTrigger.BROADCAST, SweepTxStatus.BROADCAST),
    *(TxTransition(s, TxTrigger.FEE_BUMPED, SweepTxStatus.SIGNED) for s in UNRESOLVED_TX),
    *(TxTransition(s, TxTrigger.MINED, SweepTxStatus.MINED) for s in UNRESOLVED_TX),
    *(TxTransition(s, TxTrigger.REVERTED, SweepTxStatus.FAILED) for s in UNRESOLVED_TX),
    *(TxTransition(s, TxTrigger.NONCE_TAKEN, SweepTxStatus.REPLACED) for s in UNRESOLVED_TX),
)

_ITEM_INDEX = {(t.source, t.trigger): t.target for t in ITEM_TRANSITIONS}
_TX_INDEX = {(t.source, t.trigger): t.target for t in TX_TRANSITIONS}


class SweepTransitionNotAllowed(Exception):
    def __init__(self, source: StrEnum | None, trigger: StrEnum) -> None:
        super().__init__(f"no sweep transition from {source} on {trigger}")
        self.source = source
        self.trigger = trigger


def item_transition(source: SweepItemStatus | None, trigger: ItemTrigger) -> SweepItemStatus:
    try:
        return _ITEM_INDEX[(source, trigger)]
    except KeyError:
        raise SweepTransitionNotAllowed(source, trigger) from None


def tx_transition(source: SweepTxStatus | None, trigger: TxTrigger) -> SweepTxStatus:
    try:
        return _TX_INDEX[(source, trigger)]
    except KeyError:
        raise SweepTransitionNotAllowed(source, trigger) from None
