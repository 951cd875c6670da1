"""Greenfield invoices are orders of the order service (no invoice model of their own): created
through :func:`stablegate.orders.service.create_order` with the Greenfield fields kept in the
order's ``metadata`` under ``greenfield``, and found among the orders a ``greenfield``
credential of the merchant made.

Every create request makes a new invoice, as on BTCPay: ``metadata.orderId`` is the shop's
order, which may get several invoices (one expires, the shopper tries again), so it is not the
order's number (``orderNo`` is the invoice's own id); it is kept as text for the ``orderId=``
filter. Marking an invoice maps onto the order's own operations: ``Invalid`` is the merchant's
cancellation (a pending order nothing was seen for), ``Settled`` completes a pending or expired
order by hand, audited with the key that did it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.compat.greenfield.credentials import GreenfieldCredential
from stablegate.compat.greenfield.invoice_requests import InvoiceRequest, stored_fields
from stablegate.compat.greenfield.statuses import (
    InvoiceStatus,
    can_mark_invalid,
    can_mark_settled,
    order_statuses,
)
from stablegate.compat.greenfield.wire import invalid
from stablegate.errors import InvalidRequest, NotFound
from stablegate.models import ApiKey, Order
from stablegate.models.api_key import CredentialKind
from stablegate.models.order import NotifyFormat
from stablegate.orders import queries, service
from stablegate.orders.context import OrderContext
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.state import OrderStatus
from stablegate.rates.pricing import decimal_text
from stablegate.web.errors import validated

FORMAT = "greenfield"  # the key of the Greenfield fields in an order's metadata
MAX_TAKE = 1000


def greenfield_fields(order: Order) -> dict[str, Any]:
    stored = (order.metadata_json or {}).get(FORMAT)
    return stored if isinstance(stored, dict) else {}


def _made_through_greenfield(merchant_id: str) -> Any:
    keys = select(ApiKey.id).where(
        ApiKey.merchant_id == merchant_id, ApiKey.kind == CredentialKind.GREENFIELD
    )
    return Order.compat_key_id.in_(keys)


async def create_invoice(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    credential: GreenfieldCredential,
    request: InvoiceRequest,
) -> Order:
    fields: dict[str, Any] = {
        "chainId": request.method.chain_id,
        "symbol": request.method.symbol,
        "amount": decimal_text(request.amount),
        "expireSeconds": request.expire_seconds,
        "metadata": {FORMAT: stored_fields(request)},
    }
    if request.currency != request.method.symbol:
        fields["currency"] = request.currency
    if request.redirect_url is not None:
        fields["redirectUrl"] = request.redirect_url
    if request.description is not None:
        fields["description"] = request.description
    order_request = validated(CreateOrderRequest, fields)
    try:
        order, _ = await service.create_order(
            session, clock, ctx, merchant_id=credential.merchant_id, req=order_request
        )
    except InvalidRequest as exc:
        field = {"invalid_amount": "amount", "unsupported_currency": "currency"}.get(exc.code)
        if field is not None:
            raise invalid(field, exc.message) from None
        raise
    order.compat_key_id = credential.key_id
    order.notify_format = NotifyFormat.GREENFIELD  # events go to the store's webhook
    if order.redirect_url is not None:
        # BTCPay's placeholders, known once the invoice has its id.
        order.redirect_url = order.redirect_url.replace("{InvoiceId}", order.id).replace(
            "{OrderId}", request.order_id or ""
        )
    await session.flush()
    return order


async def find_invoice(
    session: AsyncSession,
    credential: GreenfieldCredential,
    invoice_id: str,
    *,
    for_update: bool = False,
) -> Order:
    statement = queries.readable_orders(credential.merchant_id).where(
        Order.id == invoice_id, _made_through_greenfield(credential.merchant_id)
    )
    if for_update:
        statement = statement.with_for_update()
    order = await session.scalar(statement)
    if order is None:
        raise NotFound("no such invoice in this store")
    return order


async def list_invoices(
    session: AsyncSession,
    credential: GreenfieldCredential,
    *,
    order_ids: Sequence[str],
    statuses: Sequence[InvoiceStatus],
    skip: int,
    take: int,
) -> list[Order]:
    """Newest first; ``order_ids`` and ``statuses`` each match any of their values."""
    statement = queries.readable_orders(credential.merchant_id).where(
        _made_through_greenfield(credential.merchant_id)
    )
    if order_ids:
        shop_order = Order.metadata_json[(FORMAT, "orderId")].as_string()
        statement = statement.where(shop_order.in_(list(order_ids)))
    if statuses:
        wanted = [s for status in statuses for s in order_statuses(status)]
        statement = statement.where(Order.status.in_(wanted))
    statement = (
        statement.order_by(Order.create_time_ms.desc(), Order.id.desc()).offset(skip).limit(take)
    )
    return list((await session.scalars(statement)).all())


async def mark_invoice(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    credential: GreenfieldCredential,
    invoice_id: str,
    status: str,
) -> Order:
    """``Invalid`` or ``Settled``, through the order's own operations; asking for the status
    the invoice already has changes nothing."""
    order = await find_invoice(session, credential, invoice_id, for_update=True)
    refused = invalid("status", f"this invoice cannot be marked {status} now")
    if status == InvoiceStatus.INVALID:
        if order.status == OrderStatus.CANCELLED:
            return order
        if not can_mark_invalid(order):
            raise refused
        return await service.cancel_order(
            session,
            clock,
            ctx,
            merchant_id=credential.merchant_id,
            order_id=order.id,
            order_no=None,
        )
    if status == InvoiceStatus.SETTLED:
        if order.status == OrderStatus.COMPLETED:
            return order
        if not can_mark_settled(order):
            raise refused
        return await service.mark_completed(
            session,
            clock,
            ctx,
            order_id=order.id,
            actor=f"greenfield:{credential.key_id}",
            reason="marked Settled through the Greenfield API",
        )
    raise invalid("status", "Invalid or Settled is expected")
