"""Apply an order's payments to the order through the state table (orders/state.py).

Pure rules over loaded rows: given the order, all its payments and the chain's processed
final time, decide which table rows fire, mutate the order and the payments' ``credited``
flags, and return the events to write. The caller locks the order row and writes events in
the same transaction.

Definitions (docs/DESIGN.md §3, payment kinds in §4):
- credited payments: kind ``credit`` (the order's token, at least ``min_credit``), not orphaned;
- seen: only a newly seen ``credit`` payment fires ``order.payment_seen``; a newly seen
  ``wrong_token`` payment (another token of the registry) adds the ``wrong_token`` exception and
  fires ``order.wrong_token`` instead; anything else (tokens outside the registry, dust below
  ``min_credit``) is recorded and changes nothing;
- on time: block time <= expireTime; only on-time payments can complete a pending order;
- threshold: amount - tolerance; a payment is final only when the watcher marked it so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stablegate.models import Order, Payment
from stablegate.models.merchant import LatePaymentPolicy
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.orders.state import OrderException, OrderStatus, Trigger, transition


@dataclass(frozen=True)
class MerchantPolicy:
    late_payment: LatePaymentPolicy = LatePaymentPolicy.RECORD
    underpay_tolerance_ppm: int = 0


@dataclass
class Settlement:
    events: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)


def threshold(amount: int, tolerance_ppm: int) -> int:
    # Round the tolerance down: never accept less than the merchant allowed.
    return amount - (amount * tolerance_ppm) // 1_000_000


def _fire(
    order: Order,
    result: Settlement,
    trigger: Trigger,
    only_if: Mapping[OrderException, bool] | None = None,
) -> None:
    """Apply the table's row: its target, its events and the exceptions it lists. ``only_if``
    decides, from the amounts, which of the row's exceptions apply (by default all of them);
    an exception the row does not list cannot be added here."""
    row = transition(OrderStatus(order.status), trigger)
    decided = dict(only_if or {})
    if not decided.keys() <= row.exceptions:
        raise ValueError(f"{trigger} adds no {sorted(decided.keys() - row.exceptions)}")
    for exception in sorted(row.exceptions):
        if decided.get(exception, True):
            _add_exception(order, exception)
    order.status = row.target
    result.events.extend(row.events)
    result.triggers.append(trigger)


def _add_exception(order: Order, exception: OrderException) -> None:
    if exception.value not in (order.exceptions or []):
        order.exceptions = sorted({*(order.exceptions or []), exception.value})


def _remove_exception(order: Order, exception: OrderException) -> None:
    if exception.value in (order.exceptions or []):
        order.exceptions = sorted(set(order.exceptions) - {exception.value})


def settle(
    order: Order,
    payments: list[Payment],
    *,
    policy: MerchantPolicy,
    final_time_ms: int,
    newly_seen: bool,
    now_ms: int,
    wrong_token_seen: bool = False,
) -> Settlement:
    """Bring ``order`` up to date with ``payments``; returns the events to emit.

    ``newly_seen``: a ``credit`` payment of this order was newly recorded (or revived);
    ``wrong_token_seen``: a ``wrong_token`` one was.
    """
    result = Settlement()
    # The exception says whether another registry token is at the deposit address now.
    wrong_live = any(
        p.kind == PaymentKind.WRONG_TOKEN and p.status != PaymentStatus.ORPHANED for p in payments
    )
    if wrong_token_seen and wrong_live:
        _fire(order, result, Trigger.WRONG_TOKEN_SEEN)
    elif not wrong_live:
        _remove_exception(order, OrderException.WRONG_TOKEN)
    credit = [p for p in payments if p.kind == PaymentKind.CREDIT]
    live = [p for p in credit if p.status != PaymentStatus.ORPHANED]
    final = [p for p in live if p.status == PaymentStatus.FINAL]
    on_time = [p for p in live if p.block_time_ms <= order.expire_time_ms]
    final_on_time = sum(p.amount for p in on_time if p.status == PaymentStatus.FINAL)
    seen_on_time = sum(p.amount for p in on_time)
    unfinal_on_time = any(p.status == PaymentStatus.SEEN for p in on_time)
    need = threshold(order.amount, policy.underpay_tolerance_ppm)
    newly_final = [p for p in final if not p.credited]
    reversed_credit = [p for p in credit if p.status == PaymentStatus.ORPHANED and p.credited]

    order.paid_amount = sum(p.amount for p in final)
    order.pending_amount = sum(p.amount for p in live if p.status == PaymentStatus.SEEN)
    status = OrderStatus(order.status)

    # A reorg took away a payment that had already counted (deeper than finality).
    if reversed_credit:
        for p in reversed_credit:
            p.credited = False
        if status == OrderStatus.COMPLETED:
            _fire(order, result, Trigger.CREDITED_ORPHANED)
            result.alerts.append(
                f"order {order.id}: a credited payment was orphaned after completion"
            )

    if status == OrderStatus.CONFIRMING and seen_on_time < need:
        _fire(order, result, Trigger.SEEN_ORPHANED)
        status = OrderStatus.PENDING

    if status in (OrderStatus.PENDING, OrderStatus.CONFIRMING):
        if final_on_time >= need:
            _fire(order, result, Trigger.FINAL_ENOUGH, _completed_amount(order, final_on_time))
            order.complete_time_ms = now_ms
            order.tx_id = _first_tx(final)
            for p in final:
                p.credited = True
            return result
        if status == OrderStatus.PENDING and seen_on_time >= need and unfinal_on_time:
            _fire(order, result, Trigger.SEEN_ENOUGH)
            status = OrderStatus.CONFIRMING
        elif status == OrderStatus.PENDING and newly_seen:
            _fire(order, result, Trigger.SEEN_SHORT)
        new_on_time_final = [p for p in newly_final if p.block_time_ms <= order.expire_time_ms]
        if status == OrderStatus.PENDING and new_on_time_final:
            _fire(order, result, Trigger.FINAL_SHORT)
        for p in new_on_time_final:
            p.credited = True
        newly_final = [p for p in newly_final if p not in new_on_time_final]

    if (
        status == OrderStatus.PENDING
        and final_time_ms > order.expire_time_ms
        and not unfinal_on_time
    ):
        _fire(order, result, Trigger.EXPIRY, {OrderException.UNDERPAID: final_on_time > 0})
        status = OrderStatus.EXPIRED

    if not newly_final:
        return result
    for p in newly_final:
        p.credited = True

    if status == OrderStatus.COMPLETED:
        _fire(order, result, Trigger.FURTHER_FINAL)
    elif status == OrderStatus.CANCELLED:
        _fire(order, result, Trigger.CANCELLED_PAID)
    elif status == OrderStatus.EXPIRED:
        late = any(p.block_time_ms > order.expire_time_ms for p in newly_final)
        if late:
            _fire(order, result, Trigger.LATE_PAYMENT)
        if policy.late_payment == LatePaymentPolicy.COMPLETE and order.paid_amount >= order.amount:
            # The full amount is in (the condition above): no underpaid, overpaid if more.
            _remove_exception(order, OrderException.UNDERPAID)
            decided = {
                OrderException.PAID_LATE: late,
                OrderException.OVERPAID: order.paid_amount > order.amount,
            }
            _fire(order, result, Trigger.LATE_COMPLETE, decided)
            order.complete_time_ms = now_ms
            order.tx_id = order.tx_id or _first_tx(final)
    return result


def _completed_amount(order: Order, final_total: int) -> dict[OrderException, bool]:
    """Which amount exceptions a completion adds. Recomputed: an earlier short final payment
    that was later topped up leaves no ``underpaid`` (removed here, before the row fires)."""
    short = final_total < order.amount
    if not short:
        _remove_exception(order, OrderException.UNDERPAID)
    return {OrderException.OVERPAID: final_total > order.amount, OrderException.UNDERPAID: short}


def _first_tx(final: list[Payment]) -> str | None:
    ordered = sorted(final, key=lambda p: (p.block_number, p.log_index))
    return ordered[0].tx_hash if ordered else None
