"""Write an order event to the outbox, in the caller's transaction, with a per-order sequence.

The caller holds the order's row lock (it was just created, or read ``FOR UPDATE``): the
sequence is bumped on it, and the new event's ``deliverable`` flag is read under it
(:mod:`stablegate.webhooks.ordering`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.models import Order, WebhookEvent
from stablegate.models.webhook_event import EventStatus
from stablegate.secret_box import new_token
from stablegate.webhooks.ordering import holds_next


def _event_values(
    order: Order,
    sequence: int,
    event_type: str,
    order_view: dict[str, Any],
    now: int,
    *,
    held: bool,
) -> dict[str, Any]:
    event_id = new_token("evt_", 16)
    return {
        "id": event_id,
        "merchant_id": order.merchant_id,
        "order_id": order.id,
        "sequence": sequence,
        "type": event_type,
        "payload": {
            "eventId": event_id,
            "type": event_type,
            "sequence": sequence,
            "createTime": now,
            "data": order_view,
        },
        "status": EventStatus.PENDING,
        "attempts": 0,
        "next_attempt_at_ms": now,
        "created_at_ms": now,
        "deliverable": not held,
    }


_INSERT_EVENT = insert(cast(Table, WebhookEvent.__table__))


async def add_event(
    session: AsyncSession, clock: Clock, order: Order, event_type: str, order_view: dict[str, Any]
) -> WebhookEvent:
    order.event_sequence += 1
    # Every existing event of the order is earlier; the first one has none to wait for.
    held = order.event_sequence > 1 and await holds_next(session, order.id)
    event = WebhookEvent(
        **_event_values(
            order, order.event_sequence, event_type, order_view, clock.now_ms(), held=held
        )
    )
    session.add(event)
    await session.flush()
    return event


def first_event_rows(
    clock: Clock, order: Order, event_types: Sequence[str], order_view: dict[str, Any]
) -> list[dict[str, Any]]:
    """The rows of an order's first events (column -> value): numbered from 1
    (``order.event_sequence`` must already say how many), the first deliverable and each later
    one held behind it (the ordering rule for events that all are pending with no attempt)."""
    if order.event_sequence != len(event_types):
        raise ValueError("the order's event sequence must count its first events")
    now = clock.now_ms()
    return [
        _event_values(order, index + 1, event_type, order_view, now, held=index > 0)
        for index, event_type in enumerate(event_types)
    ]


async def insert_first_events(
    session: AsyncSession,
    clock: Clock,
    order: Order,
    event_types: Sequence[str],
    order_view: dict[str, Any],
) -> None:
    """The events of an order inserted in this transaction without the ORM, in one statement
    (:func:`first_event_rows`)."""
    rows = first_event_rows(clock, order, event_types, order_view)
    if rows:
        connection = await session.connection()
        await connection.execute(_INSERT_EVENT, rows)
