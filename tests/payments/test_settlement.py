"""settle(): the state table applied to payments, without a chain (the watcher tests cover
the same paths on anvil)."""

from __future__ import annotations

import itertools

from stablegate.models import Order, Payment
from stablegate.payments.settlement import MerchantPolicy, settle, threshold

EXPIRE = 1_000_000
counter = itertools.count()


def order(status: str = "pending", amount: int = 100, exceptions: list[str] | None = None) -> Order:
    return Order(
        id="o1",
        status=status,
        amount=amount,
        exceptions=exceptions or [],
        expire_time_ms=EXPIRE,
        paid_amount=0,
        pending_amount=0,
        tx_id=None,
        complete_time_ms=None,
    )


def pay(
    amount: int,
    status: str = "seen",
    *,
    at: int = EXPIRE - 1,
    credited: bool = False,
    kind: str = "credit",
) -> Payment:
    n = next(counter)
    return Payment(
        id=n,
        tx_hash=f"0x{n:064x}",
        log_index=0,
        block_number=n,
        block_time_ms=at,
        amount=amount,
        status=status,
        kind=kind,
        credited=credited,
    )


def run(
    o: Order,
    payments: list[Payment],
    *,
    final_time: int = 0,
    newly_seen: bool = False,
    policy: MerchantPolicy | None = None,
) -> list[str]:
    return settle(
        o,
        payments,
        policy=policy or MerchantPolicy(),
        final_time_ms=final_time,
        newly_seen=newly_seen,
        now_ms=5,
    ).events


def test_threshold_rounds_in_the_merchants_favour() -> None:
    assert threshold(100, 0) == 100
    assert threshold(100, 10_000) == 99
    assert threshold(999_999, 1) == 999_999  # 0.999999 of a unit of tolerance rounds to none


def test_seen_enough_then_final() -> None:
    o = order()
    p = pay(100)
    assert run(o, [p], newly_seen=True) == ["order.payment_seen", "order.confirming"]
    assert o.status == "confirming" and o.pending_amount == 100
    p.status = "final"
    assert run(o, [p]) == ["order.completed"]
    assert o.status == "completed" and o.paid_amount == 100 and p.credited and o.tx_id == p.tx_hash
    assert run(o, [p]) == []  # idempotent: nothing fires twice


def test_orphaned_seen_payment_moves_back_to_pending() -> None:
    o = order("confirming")
    p = pay(100, "orphaned")
    assert run(o, [p]) == ["order.payment_reversed"]
    assert o.status == "pending" and o.pending_amount == 0


def test_credited_payment_orphaned_after_completion() -> None:
    o = order("completed")
    p = pay(100, "orphaned", credited=True)
    result = settle(o, [p], policy=MerchantPolicy(), final_time_ms=0, newly_seen=False, now_ms=1)
    assert result.events == ["order.payment_reversed"] and result.alerts
    assert o.status == "completed" and "reversed_after_completion" in o.exceptions
    assert not p.credited


def test_late_seen_payment_does_not_confirm_a_pending_order() -> None:
    o = order()
    late = pay(100, at=EXPIRE + 1)
    assert run(o, [late], newly_seen=True) == ["order.payment_seen"]
    assert o.status == "pending"
    late.status = "final"
    assert run(o, [late], final_time=EXPIRE + 1) == ["order.expired", "order.paid_late"]
    assert o.status == "expired" and o.exceptions == ["paid_late"]


def test_expiry_waits_for_an_unfinal_on_time_payment() -> None:
    o = order()
    p = pay(50)
    assert run(o, [p], final_time=EXPIRE + 10) == []
    assert o.status == "pending"
    p.status = "final"
    assert run(o, [p], final_time=EXPIRE + 10) == ["order.underpaid", "order.expired"]
    assert o.status == "expired" and o.exceptions == ["underpaid"]


def test_below_min_and_wrong_token_never_count() -> None:
    o = order()
    ps = [pay(100, "final", kind="below_min"), pay(100, "final", kind="wrong_token")]
    assert run(o, ps) == []
    assert o.status == "pending" and o.paid_amount == 0 and o.pending_amount == 0


def test_wrong_token_adds_its_exception_and_event_and_leaves_the_status() -> None:
    for status in ("pending", "confirming", "completed", "expired", "cancelled"):
        o = order(status)
        p = pay(100, kind="wrong_token")
        # A confirming order has its own token seen; the others need none here.
        own = [pay(100)] if status == "confirming" else []
        result = settle(
            o,
            [p, *own],
            policy=MerchantPolicy(),
            final_time_ms=0,
            newly_seen=False,
            wrong_token_seen=True,
            now_ms=1,
        )
        assert result.events == ["order.wrong_token"]
        assert o.status == status and o.exceptions == ["wrong_token"]
        assert o.paid_amount == 0 and o.pending_amount == sum(x.amount for x in own)
        assert not p.credited
        # Orphaned by a reorg: the exception goes, no event.
        p.status = "orphaned"
        assert run(o, [p, *own]) == [] and o.exceptions == []


def test_topped_up_underpayment_completes_without_underpaid() -> None:
    o = order()
    first = pay(40, "final")
    assert run(o, [first]) == ["order.underpaid"]
    second = pay(60, "final")
    assert run(o, [first, second]) == ["order.completed"]
    assert o.status == "completed" and o.exceptions == []


def test_late_complete_policy_needs_the_full_amount() -> None:
    o = order("expired")
    p = pay(60, "final", at=EXPIRE + 5)
    policy = MerchantPolicy(late_payment="complete")
    assert run(o, [p], policy=policy) == ["order.paid_late"]
    q = pay(40, "final", at=EXPIRE + 6)
    assert run(o, [p, q], policy=policy) == ["order.paid_late", "order.completed"]
    assert o.status == "completed" and o.exceptions == ["paid_late"]


def test_late_complete_with_more_than_the_amount_adds_overpaid() -> None:
    o = order("expired", exceptions=["underpaid"])
    p = pay(130, "final", at=EXPIRE + 5)
    policy = MerchantPolicy(late_payment="complete")
    assert run(o, [p], policy=policy) == ["order.paid_late", "order.completed"]
    assert o.status == "completed" and o.exceptions == ["overpaid", "paid_late"]
