"""The per-order ordering rule, kept in ``webhook_events.deliverable`` for the claim to read.

The rule: event n+1 of an order is held while an earlier event of that order is ``pending``
with fewer than ``ORDER_RELEASE_ATTEMPTS`` attempts (:mod:`stablegate.webhooks.schedule`).
``deliverable`` is true exactly for the pending events no earlier event holds: per order, the
pending events up to and including the first one with fewer attempts than that. A claim is then
an index scan over the partial index of deliverable rows by ``next_attempt_at_ms`` (worked out at
claim time, the rule's ``NOT EXISTS`` was planned from statistics and turned quadratic on
PostgreSQL when they said few rows were pending).

The flag depends only on the order's events' ``status``, ``attempts`` and ``sequence``. Whatever
adds an event or changes one of those recomputes the order's flags in the same transaction
(:func:`refresh`) while holding the order's row lock (:func:`lock_orders`, taken before any of
the order's event rows so lock order is always order -> events). Writers of one order are then
serialized and each recomputation reads what the previous one committed. Leases and
``next_attempt_at_ms`` (claims, hand-backs, resending a pending event) do not touch the flag.
Changing ``ORDER_RELEASE_ATTEMPTS`` needs a migration that recomputes the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from stablegate.models import Order, WebhookEvent
from stablegate.webhooks.schedule import ORDER_RELEASE_ATTEMPTS

PENDING = "pending"
_CHUNK = 500  # ids per statement: well under every driver's bound-parameter limit


def chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """Distinct ids in sorted order, a statement's worth at a time."""
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def holds(
    order_id: SQLColumnExpression[str] | str, sequence: SQLColumnExpression[int] | int
) -> ColumnElement[bool]:
    """An earlier event of the order is pending and not yet released: it holds ``sequence``."""
    earlier = aliased(WebhookEvent)
    return (
        select(earlier.id)
        .where(
            earlier.order_id == order_id,
            earlier.sequence < sequence,
            earlier.status == PENDING,
            earlier.attempts < ORDER_RELEASE_ATTEMPTS,
        )
        .exists()
    )


def is_deliverable() -> ColumnElement[bool]:
    """The rule for a stored event, correlated to the row (what ``deliverable`` must equal)."""
    return and_(
        WebhookEvent.status == PENDING, ~holds(WebhookEvent.order_id, WebhookEvent.sequence)
    )


async def lock_orders(session: AsyncSession, order_ids: Iterable[str]) -> None:
    """Take the row locks of these orders in ascending id order, as ``settle_orders`` does
    (byte order, ``COLLATE "C"``: the database's collation may sort ids differently).

    SQLite needs none: its write transactions start ``IMMEDIATE`` and never overlap.
    """
    if (await session.connection()).dialect.name == "sqlite":
        return
    for chunk in chunks(order_ids):
        await session.execute(
            select(Order.id)
            .where(Order.id.in_(chunk))
            .order_by(Order.id.collate("C"))
            .with_for_update()
        )


async def refresh(session: AsyncSession, order_ids: Iterable[str]) -> None:
    """Recompute ``deliverable`` for every event of these orders (the caller holds their locks).

    Only rows whose flag changes are written; an order has a handful of events, reached through
    the ``(order_id, sequence)`` unique index.
    """
    rule = is_deliverable()
    for chunk in chunks(order_ids):
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.order_id.in_(chunk), WebhookEvent.deliverable != rule)
            .values(deliverable=rule)
            .execution_options(synchronize_session=False)
        )
