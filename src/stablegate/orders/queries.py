"""Every statement that finds orders, and the tenant scoping of a merchant's reads.

A merchant reads orders only through :func:`readable_orders` (the statement scoped to that
merchant), so no endpoint or command can forget the filter. The cashier's public lookup is by
the order id alone (128 random bits: whoever holds it may see the public view); payments and
the operator lock one order by id.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.models import ChainState, Merchant, Order, Payment
from stablegate.models.payment import PaymentKind


def readable_orders(merchant_id: str) -> Select[Order]:
    """The orders ``merchant_id`` may read: the base of every merchant-facing order query."""
    return select(Order).where(Order.merchant_id == merchant_id)


async def merchant_order(
    session: AsyncSession,
    merchant_id: str,
    *,
    order_id: str | None = None,
    order_no: str | None = None,
    for_update: bool = False,
) -> Order | None:
    """One of the merchant's orders by the gateway's id, the merchant's number, or both."""
    if order_id is None and order_no is None:
        raise ValueError("an order is found by its id or its number")
    statement = readable_orders(merchant_id)
    if order_id is not None:
        statement = statement.where(Order.id == order_id)
    if order_no is not None:
        statement = statement.where(Order.order_no == order_no)
    if for_update:
        statement = statement.with_for_update()
    return await session.scalar(statement)


async def public_order(session: AsyncSession, order_id: str) -> Order | None:
    """The cashier's lookup: by the unguessable order id, whoever the merchant is."""
    return await session.scalar(select(Order).where(Order.id == order_id))


async def locked_order(session: AsyncSession, order_id: str) -> Order | None:
    """The order, its row locked until the transaction ends (settlement, the operator, the
    customer's pick of payment method): read afresh, even if the session loaded it before the
    lock (another transaction may have changed it meanwhile)."""
    return await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def order_payments(session: AsyncSession, order_id: str) -> list[Payment]:
    """Every transfer seen for the order, credited or not, oldest first (not its flushes)."""
    rows = await session.scalars(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.kind != PaymentKind.FLUSH)
        .order_by(Payment.block_number, Payment.log_index)
    )
    return list(rows.all())


# Every mapped column of a table, by attribute name, so a row can stand in for the ORM object.
_ORDER_COLUMNS = [getattr(Order, column.key) for column in inspect(Order).column_attrs]
_PAYMENT_COLUMNS = [getattr(Payment, column.key) for column in inspect(Payment).column_attrs]
_BRANDING_COLUMNS: list[Any] = [
    Merchant.id,
    Merchant.name,
    Merchant.display_name,
    Merchant.logo_url,
    Merchant.support_contact,
]


@dataclass(frozen=True)
class PublicOrderRows:
    """Everything the public view of one order shows, as plain rows: equal snapshots render
    equal views, so the live poll compares these to find what changed."""

    order: Row[Any]
    merchant: Row[Any] | None  # the branding columns of its merchant
    payments: tuple[Row[Any], ...]  # its transfers but flushes, oldest first
    head: int | None  # the newest block its chain's watcher has seen


async def public_order_rows(
    session: AsyncSession, order_ids: Collection[str]
) -> dict[str, PublicOrderRows]:
    """The public view's rows of the given orders, in four queries whatever their number (no
    ORM objects to track): the live-status poll's and the cashier's lookup. An unknown id is
    left out."""
    orders = (await session.execute(select(*_ORDER_COLUMNS).where(Order.id.in_(order_ids)))).all()
    if not orders:
        return {}
    payments: dict[str, list[Row[Any]]] = {}
    for row in (
        await session.execute(
            select(*_PAYMENT_COLUMNS)
            .where(Payment.order_id.in_([o.id for o in orders]), Payment.kind != PaymentKind.FLUSH)
            .order_by(Payment.block_number, Payment.log_index, Payment.id)
        )
    ).all():
        payments.setdefault(row.order_id, []).append(row)
    merchants: dict[str, Row[Any]] = {
        row.id: row
        for row in (
            await session.execute(
                select(*_BRANDING_COLUMNS).where(Merchant.id.in_({o.merchant_id for o in orders}))
            )
        ).all()
    }
    heads: dict[int, int] = {
        chain_id: head
        for chain_id, head in (
            await session.execute(
                select(ChainState.chain_id, ChainState.head_number).where(
                    ChainState.chain_id.in_({o.chain_id for o in orders})
                )
            )
        ).all()
    }
    return {
        o.id: PublicOrderRows(
            order=o,
            merchant=merchants.get(o.merchant_id),
            payments=tuple(payments.get(o.id, ())),
            head=heads.get(o.chain_id),
        )
        for o in orders
    }
