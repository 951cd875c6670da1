"""settle() under any history: payments of every kind, finality, reorgs and clock ticks.

Whatever happens, settle() only fires rows of the order state table (orders/state.py), adds
no exception its rows do not list, and the amounts add up: the paid total is the sum of the
credited payments, which are exactly the final payments of the order's token.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from stablegate.models import Order, Payment
from stablegate.models.merchant import LatePaymentPolicy
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.orders.state import OrderException, OrderStatus, Trigger, transition
from stablegate.payments.settlement import MerchantPolicy, settle, threshold

EXPIRE = 1_000_000


@dataclass(frozen=True)
class Pay:
    amount: int
    kind: PaymentKind
    late: bool  # block time after the order's expireTime


@dataclass(frozen=True)
class Finalize:
    which: int  # index into the payments so far (modulo their number)


@dataclass(frozen=True)
class FinalizeAll:
    pass  # the final height passes every seen payment


@dataclass(frozen=True)
class Orphan:
    which: int  # a reorg takes the payment's block away (also deeper than finality)


@dataclass(frozen=True)
class Revive:
    which: int  # the orphaned transfer is re-included in another block


@dataclass(frozen=True)
class Tick:
    ms: int  # the chain's final time moves on (expiry runs on it)


@dataclass(frozen=True)
class Cancel:
    pass  # the merchant cancels, when orders/service.py would let them


Step = Pay | Finalize | FinalizeAll | Orphan | Revive | Tick | Cancel

steps = st.one_of(
    st.builds(
        Pay,
        st.integers(1, 150),
        # Mostly the order's token: the other kinds must change nothing but their exception.
        st.sampled_from(
            [PaymentKind.CREDIT] * 4 + [PaymentKind.WRONG_TOKEN, PaymentKind.BELOW_MIN]
        ),
        st.booleans(),
    ),
    st.builds(Finalize, st.integers(0, 20)),
    st.just(FinalizeAll()),
    st.just(FinalizeAll()),
    st.builds(Orphan, st.integers(0, 20)),
    st.builds(Revive, st.integers(0, 20)),
    st.builds(Tick, st.integers(1, 1_500_000)),
    st.just(Cancel()),
)


def _new_order(amount: int) -> Order:
    return Order(
        id="o1",
        status=OrderStatus.PENDING,
        amount=amount,
        exceptions=[],
        expire_time_ms=EXPIRE,
        paid_amount=0,
        pending_amount=0,
        tx_id=None,
        complete_time_ms=None,
    )


def _apply(step: Step, payments: list[Payment], counter: itertools.count[int]) -> set[str]:
    """Change the chain's view; returns the kinds newly seen (recorded or revived)."""
    if isinstance(step, Pay):
        n = next(counter)
        payments.append(
            Payment(
                id=n,
                tx_hash=f"0x{n:064x}",
                log_index=0,
                block_number=n,
                block_time_ms=EXPIRE + 1 + n if step.late else EXPIRE - 1_000 + n,
                amount=step.amount,
                status=PaymentStatus.SEEN,
                kind=step.kind,
                credited=False,
            )
        )
        return {step.kind}
    if isinstance(step, FinalizeAll):
        for p in payments:
            if p.status == PaymentStatus.SEEN:
                p.status = PaymentStatus.FINAL
    if isinstance(step, Finalize | Orphan | Revive) and payments:
        p = payments[step.which % len(payments)]
        if isinstance(step, Finalize) and p.status == PaymentStatus.SEEN:
            p.status = PaymentStatus.FINAL
        elif isinstance(step, Orphan) and p.status != PaymentStatus.ORPHANED:
            p.status = PaymentStatus.ORPHANED
        elif isinstance(step, Revive) and p.status == PaymentStatus.ORPHANED:
            p.status = PaymentStatus.SEEN
            return {p.kind}
    return set()


@settings(max_examples=500, deadline=None)
@given(
    amount=st.integers(1, 200),
    tolerance_ppm=st.sampled_from([0, 10_000, 99_999]),
    late_payment=st.sampled_from(list(LatePaymentPolicy)),
    history=st.lists(steps, min_size=3, max_size=30),
    # Half the histories start with the order's time already up: the late paths.
    final_time=st.sampled_from([0, EXPIRE + 1]),
)
def test_settle_fires_only_table_rows_and_the_amounts_add_up(
    amount: int,
    tolerance_ppm: int,
    late_payment: LatePaymentPolicy,
    history: list[Step],
    final_time: int,
) -> None:
    order = _new_order(amount)
    policy = MerchantPolicy(late_payment=late_payment, underpay_tolerance_ppm=tolerance_ppm)
    payments: list[Payment] = []
    counter = itertools.count()
    for now, step in enumerate(history, start=1):
        if isinstance(step, Tick):
            final_time += step.ms
        if isinstance(step, Cancel):
            nothing_seen = order.paid_amount == order.pending_amount == 0 and order.tx_id is None
            if order.status == OrderStatus.PENDING and nothing_seen:
                order.status = transition(order.status, Trigger.MERCHANT_CANCEL).target
            continue
        seen = _apply(step, payments, counter)
        before_status = OrderStatus(order.status)
        before_exceptions = set(order.exceptions)
        result = settle(
            order,
            payments,
            policy=policy,
            final_time_ms=final_time,
            newly_seen=PaymentKind.CREDIT in seen,
            now_ms=now,
            wrong_token_seen=PaymentKind.WRONG_TOKEN in seen,
        )

        # Only rows of the table fire, one after the other, and their events are the output.
        status: OrderStatus = before_status
        events: list[str] = []
        may_add: set[str] = set()
        for trigger in result.triggers:
            row = transition(status, trigger)  # raises if the table has no such row
            status = row.target
            events += row.events
            may_add |= set(row.exceptions)
        assert order.status == status
        assert result.events == events
        # No exception its rows do not list; only these two are ever taken back.
        assert set(order.exceptions) - before_exceptions <= may_add
        assert before_exceptions - set(order.exceptions) <= {
            OrderException.UNDERPAID,
            OrderException.WRONG_TOKEN,
        }
        assert order.exceptions == sorted(set(order.exceptions))

        # The amounts add up: credited payments are the final ones of the order's token.
        credit = [p for p in payments if p.kind == PaymentKind.CREDIT]
        final = [p for p in credit if p.status == PaymentStatus.FINAL]
        assert [p for p in payments if p.credited] == final
        assert order.paid_amount == sum(p.amount for p in final)
        assert order.pending_amount == sum(
            p.amount for p in credit if p.status == PaymentStatus.SEEN
        )
        # The wrong_token exception says whether another token is at the address right now.
        wrong_live = any(
            p.kind == PaymentKind.WRONG_TOKEN and p.status != PaymentStatus.ORPHANED
            for p in payments
        )
        if OrderException.WRONG_TOKEN in order.exceptions:
            assert wrong_live

        # Completion by payment needs enough final money on time (or the whole amount late).
        if Trigger.FINAL_ENOUGH in result.triggers:
            on_time = sum(p.amount for p in final if p.block_time_ms <= EXPIRE)
            assert on_time >= threshold(amount, tolerance_ppm)
            assert order.complete_time_ms == now and order.tx_id is not None
        if Trigger.LATE_COMPLETE in result.triggers:
            assert late_payment == LatePaymentPolicy.COMPLETE and order.paid_amount >= amount
        # Expiry runs on the chain's final clock, never while an on-time payment is unfinal.
        if Trigger.EXPIRY in result.triggers:
            assert final_time > EXPIRE
            assert not any(
                p.status == PaymentStatus.SEEN and p.block_time_ms <= EXPIRE for p in credit
            )
