"""Write an order event to the outbox, in the caller's transaction, with a per-order sequence.

The caller holds the order's row lock (it was just created, or read ``FOR UPDATE``): the
sequence is bumped on it, and the new event's ``deliverable`` flag is read under it
(:mod:`stablegate.webhooks.ordering`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.models import Order, WebhookEvent
from stablegate.models.webhook_event import EventStatus
from stablegate.secret_box import new_token
from stablegate.webhooks.ordering import holds_next


async def add_event(
    session: AsyncSession, clock: Clock, order: Order, event_type: str, order_view: dict[str, Any]
) -> WebhookEvent:
    order.event_sequence += 1
    # Every existing event of the order is earlier; the first one has none to wait for.
    held = order.event_sequence > 1 and await holds_next(session, order.id)
    now = clock.now_ms()
    event_id = new_token("evt_", 16)
    event = WebhookEvent(
        id=event_id,
        merchant_id=order.merchant_id,
        order_id=order.id,
        sequence=order.event_sequence,
        type=event_type,
        payload={
            "eventId": event_id,
            "type": event_type,
            "sequence": order.event_sequence,
            "createTime": now,
            "data": order_view,
        },
        status=EventStatus.PENDING,
        attempts=0,
        next_attempt_at_ms=now,
        created_at_ms=now,
        deliverable=not held,
    )
    session.add(event)
    await session.flush()
    return event
