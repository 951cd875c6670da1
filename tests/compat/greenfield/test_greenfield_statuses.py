"""The Greenfield status of every order status (orders/state.py's) with every exception and
amount that changes it: each lands on one invoice status and one additional status, and none
that BTCPay's clients read as paid (Settled, or PaidLate) unless the order completed."""

from __future__ import annotations

from itertools import chain, combinations

import pytest

from stablegate.compat.greenfield.statuses import (
    INVOICE_STATUS,
    AdditionalStatus,
    InvoiceStatus,
    invoice_status,
    markable,
    order_statuses,
)
from stablegate.models import Order
from stablegate.orders.state import OrderException, OrderStatus

EXCEPTIONS = list(OrderException)
ALL_SUBSETS = list(
    chain.from_iterable(combinations(EXCEPTIONS, n) for n in range(len(EXCEPTIONS) + 1))
)


def order(status: OrderStatus, exceptions: tuple[OrderException, ...], received: int) -> Order:
    return Order(
        status=status,
        exceptions=[e.value for e in exceptions],
        amount=100,
        paid_amount=received,
        pending_amount=0,
        tx_id="0xabc" if received else None,
    )


def test_every_order_status_has_an_invoice_status() -> None:
    assert set(INVOICE_STATUS) == set(OrderStatus)
    assert {s for status in InvoiceStatus for s in order_statuses(status)} == set(OrderStatus)


@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_combination_maps_and_only_completion_reads_as_paid(status: OrderStatus) -> None:
    for exceptions in ALL_SUBSETS:
        for received in (0, 50, 100, 150):
            found, additional = invoice_status(order(status, exceptions, received))
            assert found == INVOICE_STATUS[status]
            assert isinstance(additional, AdditionalStatus)
            paid_to_a_client = found == InvoiceStatus.SETTLED or additional == "PaidLate"
            assert paid_to_a_client == (status == OrderStatus.COMPLETED)


@pytest.mark.parametrize(
    ("status", "exceptions", "received", "expected"),
    [
        (OrderStatus.PENDING, (), 0, ("New", "None")),
        (OrderStatus.PENDING, (OrderException.UNDERPAID,), 50, ("New", "PaidPartial")),
        (OrderStatus.CONFIRMING, (), 100, ("Processing", "None")),
        (OrderStatus.CONFIRMING, (), 150, ("Processing", "PaidOver")),
        (OrderStatus.COMPLETED, (), 100, ("Settled", "None")),
        (OrderStatus.COMPLETED, (OrderException.OVERPAID,), 150, ("Settled", "PaidOver")),
        (OrderStatus.COMPLETED, (OrderException.PAID_LATE,), 100, ("Settled", "PaidLate")),
        (OrderStatus.COMPLETED, (OrderException.MANUAL,), 0, ("Settled", "Marked")),
        (
            OrderStatus.COMPLETED,
            (OrderException.REVERSED_AFTER_COMPLETION,),
            0,
            ("Settled", "Invalid"),
        ),
        (OrderStatus.EXPIRED, (), 0, ("Expired", "None")),
        (OrderStatus.EXPIRED, (OrderException.UNDERPAID,), 50, ("Expired", "PaidPartial")),
        (OrderStatus.EXPIRED, (OrderException.PAID_LATE,), 100, ("Expired", "PaidPartial")),
        (OrderStatus.CANCELLED, (), 0, ("Invalid", "Marked")),
        (OrderStatus.CANCELLED, (OrderException.PAID_LATE,), 100, ("Invalid", "Marked")),
    ],
)
def test_the_table(
    status: OrderStatus,
    exceptions: tuple[OrderException, ...],
    received: int,
    expected: tuple[str, str],
) -> None:
    assert invoice_status(order(status, exceptions, received)) == expected


@pytest.mark.parametrize(
    ("status", "received", "expected"),
    [
        (OrderStatus.PENDING, 0, ["Settled", "Invalid"]),
        (OrderStatus.PENDING, 50, ["Settled"]),
        (OrderStatus.CONFIRMING, 100, []),
        (OrderStatus.COMPLETED, 100, []),
        (OrderStatus.EXPIRED, 0, ["Settled"]),
        (OrderStatus.CANCELLED, 0, []),
    ],
)
def test_what_can_be_marked_follows_the_state_machine(
    status: OrderStatus, received: int, expected: list[str]
) -> None:
    assert markable(order(status, (), received)) == expected
