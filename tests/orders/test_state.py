"""The state table of docs/DESIGN.md §3, row by row."""

from __future__ import annotations

import pytest

from stablegate.orders.state import (
    TRANSITIONS,
    OrderException,
    OrderStatus,
    TransitionNotAllowed,
    Trigger,
    allowed,
    transition,
)

S, E, T = OrderStatus, OrderException, Trigger

# (from, trigger, to, exceptions the row may add, events) exactly as docs/DESIGN.md §3 lists them.
DESIGN_TABLE = [
    (None, T.CREATED, S.PENDING, set(), ("order.created",)),
    (S.PENDING, T.SEEN_ENOUGH, S.CONFIRMING, set(), ("order.payment_seen", "order.confirming")),
    (S.PENDING, T.SEEN_SHORT, S.PENDING, set(), ("order.payment_seen",)),
    (S.PENDING, T.FINAL_ENOUGH, S.COMPLETED, {E.OVERPAID, E.UNDERPAID}, ("order.completed",)),
    (S.CONFIRMING, T.FINAL_ENOUGH, S.COMPLETED, {E.OVERPAID, E.UNDERPAID}, ("order.completed",)),
    (S.PENDING, T.FINAL_SHORT, S.PENDING, {E.UNDERPAID}, ("order.underpaid",)),
    (S.CONFIRMING, T.SEEN_ORPHANED, S.PENDING, set(), ("order.payment_reversed",)),
    (
        S.COMPLETED,
        T.CREDITED_ORPHANED,
        S.COMPLETED,
        {E.REVERSED_AFTER_COMPLETION},
        ("order.payment_reversed",),
    ),
    (S.PENDING, T.EXPIRY, S.EXPIRED, {E.UNDERPAID}, ("order.expired",)),
    (S.EXPIRED, T.LATE_PAYMENT, S.EXPIRED, {E.PAID_LATE}, ("order.paid_late",)),
    # overpaid too: a late completion with more than the amount says so (as settle() always did).
    (S.EXPIRED, T.LATE_COMPLETE, S.COMPLETED, {E.PAID_LATE, E.OVERPAID}, ("order.completed",)),
    (S.PENDING, T.MERCHANT_CANCEL, S.CANCELLED, set(), ("order.cancelled",)),
    (S.COMPLETED, T.FURTHER_FINAL, S.COMPLETED, {E.OVERPAID}, ("order.overpaid",)),
    (S.CANCELLED, T.CANCELLED_PAID, S.CANCELLED, {E.PAID_LATE}, ("order.paid_late",)),
    (S.PENDING, T.OPERATOR_COMPLETE, S.COMPLETED, {E.MANUAL}, ("order.completed",)),
    (S.EXPIRED, T.OPERATOR_COMPLETE, S.COMPLETED, {E.MANUAL}, ("order.completed",)),
] + [
    # Another registry token at the deposit address: in any status, the status stays.
    (status, T.WRONG_TOKEN_SEEN, status, {E.WRONG_TOKEN}, ("order.wrong_token",))
    for status in S
]


@pytest.mark.parametrize(("source", "trigger", "target", "exceptions", "events"), DESIGN_TABLE)
def test_every_design_row_is_in_the_table(source, trigger, target, exceptions, events) -> None:  # type: ignore[no-untyped-def]
    row = transition(source, trigger)
    assert row.target == target
    assert row.exceptions == frozenset(exceptions)
    assert row.events == events


def test_the_table_has_nothing_else() -> None:
    assert len(TRANSITIONS) == len(DESIGN_TABLE)


@pytest.mark.parametrize("status", [S.COMPLETED, S.CANCELLED, S.EXPIRED, S.CONFIRMING])
def test_cancel_only_from_pending(status: OrderStatus) -> None:
    assert not allowed(status, T.MERCHANT_CANCEL)
    with pytest.raises(TransitionNotAllowed):
        transition(status, T.MERCHANT_CANCEL)


def test_terminal_states_never_go_back_to_pending() -> None:
    for row in TRANSITIONS:
        if row.source in (S.COMPLETED, S.CANCELLED, S.EXPIRED):
            assert row.target != S.PENDING
