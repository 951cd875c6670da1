"""An order's status in Greenfield's terms, as one table: the invoice ``status`` is a function of
the order's status alone (so listing can filter on it in SQL), and ``additionalStatus`` of its
exceptions and amounts.

=============  ============  ==============================================================
order          invoice       additionalStatus
=============  ============  ==============================================================
pending        New           PaidPartial once anything was paid or seen, else None
confirming     Processing    PaidOver when more than the amount was seen, else None
completed      Settled       Marked (completed by hand), else PaidLate, else PaidOver, else
                             None; Invalid once a credited payment was reversed by a reorg
expired        Expired       PaidPartial when anything arrived (never PaidLate: BTCPay's
                             clients read Expired + PaidLate as paid), else None
cancelled      Invalid       Marked (the merchant cancelled it)
=============  ============  ==============================================================
"""

from __future__ import annotations

from enum import StrEnum

from stablegate.models import Order
from stablegate.orders.state import OrderException, OrderStatus, Trigger, allowed


class InvoiceStatus(StrEnum):
    NEW = "New"
    PROCESSING = "Processing"
    SETTLED = "Settled"
    EXPIRED = "Expired"
    INVALID = "Invalid"


class AdditionalStatus(StrEnum):
    NONE = "None"
    PAID_LATE = "PaidLate"
    PAID_PARTIAL = "PaidPartial"
    PAID_OVER = "PaidOver"
    MARKED = "Marked"
    INVALID = "Invalid"


INVOICE_STATUS: dict[OrderStatus, InvoiceStatus] = {
    OrderStatus.PENDING: InvoiceStatus.NEW,
    OrderStatus.CONFIRMING: InvoiceStatus.PROCESSING,
    OrderStatus.COMPLETED: InvoiceStatus.SETTLED,
    OrderStatus.EXPIRED: InvoiceStatus.EXPIRED,
    OrderStatus.CANCELLED: InvoiceStatus.INVALID,
}


def order_statuses(invoice_status: InvoiceStatus) -> list[OrderStatus]:
    return [order for order, invoice in INVOICE_STATUS.items() if invoice == invoice_status]


def additional_status(order: Order) -> AdditionalStatus:
    status = OrderStatus(order.status)
    exceptions = set(order.exceptions or [])
    received = order.paid_amount + order.pending_amount
    if status == OrderStatus.PENDING:
        return AdditionalStatus.PAID_PARTIAL if received > 0 else AdditionalStatus.NONE
    if status == OrderStatus.CONFIRMING:
        return AdditionalStatus.PAID_OVER if received > order.amount else AdditionalStatus.NONE
    if status == OrderStatus.COMPLETED:
        for exception, additional in (
            (OrderException.REVERSED_AFTER_COMPLETION, AdditionalStatus.INVALID),
            (OrderException.MANUAL, AdditionalStatus.MARKED),
            (OrderException.PAID_LATE, AdditionalStatus.PAID_LATE),
            (OrderException.OVERPAID, AdditionalStatus.PAID_OVER),
        ):
            if exception.value in exceptions:
                return additional
        return AdditionalStatus.NONE
    if status == OrderStatus.EXPIRED:
        return AdditionalStatus.PAID_PARTIAL if received > 0 else AdditionalStatus.NONE
    return AdditionalStatus.MARKED  # cancelled


def invoice_status(order: Order) -> tuple[InvoiceStatus, AdditionalStatus]:
    return INVOICE_STATUS[OrderStatus(order.status)], additional_status(order)


def can_mark_invalid(order: Order) -> bool:
    """The merchant's cancellation: a pending order nothing was seen for."""
    return (
        allowed(OrderStatus(order.status), Trigger.MERCHANT_CANCEL)
        and order.paid_amount == 0
        and order.pending_amount == 0
        and order.tx_id is None
    )


def can_mark_settled(order: Order) -> bool:
    return allowed(OrderStatus(order.status), Trigger.OPERATOR_COMPLETE)


def markable(order: Order) -> list[str]:
    """``availableStatusesForManualMarking``."""
    found = []
    if can_mark_settled(order):
        found.append(InvoiceStatus.SETTLED.value)
    if can_mark_invalid(order):
        found.append(InvoiceStatus.INVALID.value)
    return found
