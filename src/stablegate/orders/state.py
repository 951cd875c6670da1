"""The order state machine as one table (docs/DESIGN.md §3). Nothing else lives here.

Services ask :func:`transition` which row applies; tests enumerate :data:`TRANSITIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stablegate.models.order import OrderException, OrderStatus

__all__ = [
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "OrderException",
    "OrderStatus",
    "Transition",
    "TransitionNotAllowed",
    "Trigger",
    "allowed",
    "transition",
]


class Trigger(StrEnum):
    CREATED = "created"
    SEEN_ENOUGH = "payment_seen_enough"  # seen total >= amount - tolerance
    SEEN_SHORT = "payment_seen_short"  # seen total below that
    FINAL_ENOUGH = "final_enough"  # final total >= amount - tolerance
    FINAL_SHORT = "final_short"  # final total > 0 but below amount - tolerance
    SEEN_ORPHANED = "seen_payment_orphaned"  # seen total now below amount - tolerance
    CREDITED_ORPHANED = "credited_payment_orphaned"  # reorg deeper than finality
    EXPIRY = "expiry"  # chain time > expireTime, no unfinal payment
    LATE_PAYMENT = "late_payment"  # any payment with block time > expireTime
    LATE_COMPLETE = "late_complete"  # final total >= amount and late_payment=complete
    MERCHANT_CANCEL = "merchant_cancel"  # nothing seen yet
    FURTHER_FINAL = "further_payment_final"
    CANCELLED_PAID = "cancelled_order_paid"
    OPERATOR_COMPLETE = "operator_mark_completed"
    WRONG_TOKEN_SEEN = "wrong_token_seen"  # another registry token arrived; status unchanged


@dataclass(frozen=True)
class Transition:
    source: OrderStatus | None
    trigger: Trigger
    target: OrderStatus
    # Exceptions this row may add, and the only ones settle() can add when it fires the row;
    # which of them apply is decided by the amounts (payments/settlement.py).
    exceptions: frozenset[OrderException]
    events: tuple[str, ...]


S = OrderStatus
E = OrderException
T = Trigger


def _row(
    sources: tuple[OrderStatus | None, ...],
    trigger: Trigger,
    target: OrderStatus,
    exceptions: tuple[OrderException, ...] = (),
    events: tuple[str, ...] = (),
) -> list[Transition]:
    return [Transition(s, trigger, target, frozenset(exceptions), events) for s in sources]


TRANSITIONS: tuple[Transition, ...] = tuple(
    _row((None,), T.CREATED, S.PENDING, events=("order.created",))
    + _row(
        (S.PENDING,),
        T.SEEN_ENOUGH,
        S.CONFIRMING,
        events=("order.payment_seen", "order.confirming"),
    )
    + _row((S.PENDING,), T.SEEN_SHORT, S.PENDING, events=("order.payment_seen",))
    + _row(
        (S.PENDING, S.CONFIRMING),
        T.FINAL_ENOUGH,
        S.COMPLETED,
        (E.OVERPAID, E.UNDERPAID),
        ("order.completed",),
    )
    + _row((S.PENDING,), T.FINAL_SHORT, S.PENDING, (E.UNDERPAID,), ("order.underpaid",))
    + _row((S.CONFIRMING,), T.SEEN_ORPHANED, S.PENDING, events=("order.payment_reversed",))
    + _row(
        (S.COMPLETED,),
        T.CREDITED_ORPHANED,
        S.COMPLETED,
        (E.REVERSED_AFTER_COMPLETION,),
        ("order.payment_reversed",),
    )
    + _row((S.PENDING,), T.EXPIRY, S.EXPIRED, (E.UNDERPAID,), ("order.expired",))
    + _row((S.EXPIRED,), T.LATE_PAYMENT, S.EXPIRED, (E.PAID_LATE,), ("order.paid_late",))
    # paid_late when the completing payment is late; overpaid when the final total is above.
    + _row(
        (S.EXPIRED,),
        T.LATE_COMPLETE,
        S.COMPLETED,
        (E.PAID_LATE, E.OVERPAID),
        ("order.completed",),
    )
    + _row((S.PENDING,), T.MERCHANT_CANCEL, S.CANCELLED, events=("order.cancelled",))
    + _row((S.COMPLETED,), T.FURTHER_FINAL, S.COMPLETED, (E.OVERPAID,), ("order.overpaid",))
    + _row((S.CANCELLED,), T.CANCELLED_PAID, S.CANCELLED, (E.PAID_LATE,), ("order.paid_late",))
    + _row(
        (S.PENDING, S.EXPIRED),
        T.OPERATOR_COMPLETE,
        S.COMPLETED,
        (E.MANUAL,),
        ("order.completed",),
    )
    # In any status: the merchant is told and acts (refund); the status never changes.
    + [
        row
        for status in OrderStatus
        for row in _row(
            (status,), T.WRONG_TOKEN_SEEN, status, (E.WRONG_TOKEN,), ("order.wrong_token",)
        )
    ]
)

# Statuses where the order no longer waits for the buyer: the cashier page stops refreshing.
# (An expired order can still complete by a late payment or the operator, a webhook matter.)
TERMINAL_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.COMPLETED, OrderStatus.EXPIRED, OrderStatus.CANCELLED}
)

_INDEX: dict[tuple[OrderStatus | None, Trigger], Transition] = {
    (t.source, t.trigger): t for t in TRANSITIONS
}


class TransitionNotAllowed(Exception):
    def __init__(self, source: OrderStatus | None, trigger: Trigger) -> None:
        super().__init__(f"no transition from {source} on {trigger}")
        self.source = source
        self.trigger = trigger


def transition(source: OrderStatus | None, trigger: Trigger) -> Transition:
    try:
        return _INDEX[(source, trigger)]
    except KeyError:
        raise TransitionNotAllowed(source, trigger) from None


def allowed(source: OrderStatus | None, trigger: Trigger) -> bool:
    return (source, trigger) in _INDEX
