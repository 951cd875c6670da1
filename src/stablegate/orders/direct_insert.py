"""A new order written without the ORM's unit of work: one INSERT for the order and one for its
first events, or, with a guard, both and the guard's checks at once by the backend's writer of
signed orders (:mod:`stablegate.orders.insert_guard`). A repeated ``orderNo`` inserts nothing
and is answered with the stored order, or 409 when it was made with other fields.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Insert, Table, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import configure_mappers, instrumentation

from stablegate.auth.replay import replayed_request
from stablegate.clock import Clock
from stablegate.errors import Conflict
from stablegate.models import Order
from stablegate.orders import queries
from stablegate.orders.context import OrderContext
from stablegate.orders.insert_guard import (
    ConfirmedRefusal,
    InsertGuard,
    StaleCredentials,
)
from stablegate.orders.state import Trigger, transition
from stablegate.orders.view import order_view, remember_created_view
from stablegate.webhooks.outbox import first_event_rows, insert_first_events

# Every mapped column of an order: attribute, column name (``metadata_json`` is stored as
# ``metadata``) and Python-side default, as a flush would apply it.
_ORDER_COLUMNS = [
    (attr.key, attr.columns[0].name, attr.columns[0].default)
    for attr in inspect(Order).column_attrs
]


def insert_order_statement(dialect: str) -> Insert:
    """INSERT of one order that does nothing when the merchant already has its orderNo."""
    table = cast(Table, Order.__table__)
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing(
        index_elements=[table.c.merchant_id, table.c.order_no]
    ).returning(table.c.id)


_INSERT_ORDER = {name: insert_order_statement(name) for name in ("postgresql", "sqlite")}


async def insert_direct(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    attributes: dict[str, Any],
    fingerprint: str,
    guard: InsertGuard | None,
) -> tuple[Order, bool]:
    """Write a new order (``attributes``: its mapped attributes) and its first events with one
    INSERT each (one statement for both with ``guard``); a repeated orderNo (another request
    won the race, or this is a repeat) returns the order already there."""
    created = transition(None, Trigger.CREATED)
    attributes["event_sequence"] = len(created.events)
    for key, _column, default in _ORDER_COLUMNS:
        # What a flush would fill in, so the order returned reads like one that was flushed.
        if key not in attributes and default is not None and default.is_scalar:
            attributes[key] = default.arg
    order = _unsaved_order(attributes)
    values = {column: attributes[key] for key, column, _ in _ORDER_COLUMNS if key in attributes}
    if guard is not None:
        return await _insert_guarded(session, clock, ctx, order, fingerprint, values, guard)
    # On the session's connection: the ORM has nothing to track here, and skipping it halves
    # the statements' cost.
    connection = await session.connection()
    statement = _INSERT_ORDER[connection.dialect.name]
    if (await connection.execute(statement, values)).first() is None:
        return await _stored_repeat(session, order, fingerprint), False
    view = order_view(order, ctx.registry, ctx.public_url)
    await insert_first_events(session, clock, order, created.events, view)
    remember_created_view(order, view)
    return order, True


def _unsaved_order(attributes: dict[str, Any]) -> Order:
    """An order with these attributes, built the way the ORM builds a row it loads (all at
    once) rather than through ``__init__``, which fires an attribute event per column (5 to 7 %
    of a signed order's CPU in the profile). It is never added to a session."""
    configure_mappers()  # a no-op once done; new_instance needs the mapper configured
    order = instrumentation.manager_of_class(Order).new_instance()
    order.__dict__.update(attributes)
    return order


async def _insert_guarded(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    order: Order,
    fingerprint: str,
    values: dict[str, object],
    guard: InsertGuard,
) -> tuple[Order, bool]:
    """The order, its first events and the guard's checks written at once by
    ``ctx.signed_orders``; what it refuses with the credentials confirmed is a
    :class:`ConfirmedRefusal`."""
    if ctx.signed_orders is None:
        raise RuntimeError("this order context has no writer of guarded orders")
    view = order_view(order, ctx.registry, ctx.public_url)
    rows = first_event_rows(clock, order, transition(None, Trigger.CREATED).events, view)
    outcome = await ctx.signed_orders.insert(guard, values, rows)
    if not outcome.epoch_matches(guard):
        raise StaleCredentials()
    if not outcome.claimed:
        raise ConfirmedRefusal(replayed_request())
    if outcome.order_id is not None:
        remember_created_view(order, view)
        return order, True
    try:
        return await _stored_repeat(session, order, fingerprint), False
    except Conflict as conflict:
        raise ConfirmedRefusal(conflict) from None


async def _stored_repeat(session: AsyncSession, order: Order, fingerprint: str) -> Order:
    """The order already stored under the new one's orderNo (only a repeat makes the insert do
    nothing), or 409 when it was made with other fields."""
    existing = await queries.merchant_order(session, order.merchant_id, order_no=order.order_no)
    if existing is None:
        raise RuntimeError("an order insert did nothing, yet no order has its orderNo")
    return same_or_conflict(existing, fingerprint)


def same_or_conflict(existing: Order, fingerprint: str) -> Order:
    """``existing`` when it was made with the same fields (``fingerprint``), else 409."""
    if existing.request_fingerprint != fingerprint:
        raise Conflict(
            "an order with this orderNo exists with different fields", code="order_conflict"
        )
    return existing
