"""The sweep item and sweep transaction state tables (sweeper/state.py), row by row."""

from __future__ import annotations

import pytest

from stablegate.models.sweep import SweepItemStatus, SweepTxStatus
from stablegate.sweeper.state import (
    ITEM_TRANSITIONS,
    TX_TRANSITIONS,
    UNRESOLVED_TX,
    ItemTrigger,
    SweepTransitionNotAllowed,
    TxTrigger,
    item_transition,
    tx_transition,
)

Item, IT, Tx, XT = SweepItemStatus, ItemTrigger, SweepTxStatus, TxTrigger

ITEM_TABLE = [
    (None, IT.OPENED, Item.PENDING),
    (Item.DONE, IT.OPENED, Item.PENDING),
    (Item.PENDING, IT.SIGNED, Item.SENT),
    (Item.RETRY, IT.SIGNED, Item.SENT),
    (Item.SENT, IT.FLUSHED, Item.DONE),
    *((s, IT.ALREADY_EMPTY, Item.DONE) for s in (Item.PENDING, Item.RETRY, Item.SENT)),
    *((s, IT.FAILED_RETRY, Item.RETRY) for s in (Item.PENDING, Item.RETRY, Item.SENT)),
    *((s, IT.FAILED_STUCK, Item.STUCK) for s in (Item.PENDING, Item.RETRY, Item.SENT)),
    (Item.SENT, IT.RELEASED, Item.PENDING),
    (Item.STUCK, IT.REQUEUED, Item.PENDING),
]

TX_TABLE = [
    (None, XT.SIGNED, Tx.SIGNED),
    (Tx.SIGNED, XT.BROADCAST, Tx.BROADCAST),
    *((s, XT.FEE_BUMPED, Tx.SIGNED) for s in (Tx.SIGNED, Tx.BROADCAST)),
    *((s, XT.MINED, Tx.MINED) for s in (Tx.SIGNED, Tx.BROADCAST)),
    *((s, XT.REVERTED, Tx.FAILED) for s in (Tx.SIGNED, Tx.BROADCAST)),
    *((s, XT.NONCE_TAKEN, Tx.REPLACED) for s in (Tx.SIGNED, Tx.BROADCAST)),
]


@pytest.mark.parametrize(("source", "trigger", "target"), ITEM_TABLE)
def test_every_item_row(
    source: SweepItemStatus | None, trigger: ItemTrigger, target: SweepItemStatus
) -> None:
    assert item_transition(source, trigger) == target


@pytest.mark.parametrize(("source", "trigger", "target"), TX_TABLE)
def test_every_tx_row(
    source: SweepTxStatus | None, trigger: TxTrigger, target: SweepTxStatus
) -> None:
    assert tx_transition(source, trigger) == target


def test_the_tables_have_nothing_else() -> None:
    assert len(ITEM_TRANSITIONS) == len(ITEM_TABLE)
    assert len(TX_TRANSITIONS) == len(TX_TABLE)


def test_a_swept_item_moves_only_on_new_money() -> None:
    for trigger in IT:
        if trigger != IT.OPENED:
            with pytest.raises(SweepTransitionNotAllowed):
                item_transition(Item.DONE, trigger)


def test_a_resolved_transaction_never_changes() -> None:
    for status in set(Tx) - set(UNRESOLVED_TX):
        for trigger in XT:
            with pytest.raises(SweepTransitionNotAllowed):
                tx_transition(status, trigger)
