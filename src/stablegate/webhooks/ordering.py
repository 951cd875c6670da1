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
The upkeep reads an order's events by ``order_id`` only and applies the rule in Python, so its
plans do not depend on statistics either. Changing ``ORDER_RELEASE_ATTEMPTS`` needs a
migration that recomputes the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.models import Order, WebhookEvent
from stablegate.models.webhook_event import EventStatus
from stablegate.webhooks.schedule import ORDER_RELEASE_ATTEMPTS

PENDING = EventStatus.PENDING
_CHUNK = 500  # ids per statement: well under every driver's bound-parameter limit


def chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """Distinct ids in sorted order, a statement's worth at a time."""
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def flags(events: Iterable[tuple[str, str, int]]) -> dict[str, bool]:
    """The rule over one order's events ``(id, status, attempts)``, oldest first."""
    out: dict[str, bool] = {}
    held = False
    for event_id, status, attempts in events:
        pending = status == PENDING
        out[event_id] = pending and not held
        held = held or (pending and attempts < ORDER_RELEASE_ATTEMPTS)
    return out


async def holds_next(session: AsyncSession, order_id: str) -> bool:
    """Whether an event of the order would hold a new one (the caller holds the order's lock)."""
    rows = await session.execute(
        select(WebhookEvent.status, WebhookEvent.attempts).where(WebhookEvent.order_id == order_id)
    )
    return any(s == PENDING and a < ORDER_RELEASE_ATTEMPTS for s, a in rows.all())


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

    The events are read by ``order_id`` alone and the rule applied here, not in SQL: the only
    index that can serve that read is ``(order_id, sequence)``, whatever the statistics say (a
    ``status = 'pending'`` term would let a planner that thinks nothing is pending pick
    ``ix_webhook_events_status`` and scan every pending row). Only changed flags are written.
    """
    for chunk in chunks(order_ids):
        rows = await session.execute(
            select(
                WebhookEvent.order_id,
                WebhookEvent.id,
                WebhookEvent.status,
                WebhookEvent.attempts,
                WebhookEvent.deliverable,
            )
            .where(WebhookEvent.order_id.in_(chunk))
            .order_by(WebhookEvent.order_id, WebhookEvent.sequence)
        )
        by_order: dict[str, list[tuple[str, str, int]]] = {}
        stored: dict[str, bool] = {}
        for order_id, event_id, status, attempts, deliverable in rows.all():
            by_order.setdefault(order_id, []).append((event_id, status, attempts))
            stored[event_id] = deliverable
        changed: dict[bool, list[str]] = {True: [], False: []}
        for events in by_order.values():
            for event_id, flag in flags(events).items():
                if stored[event_id] != flag:
                    changed[flag].append(event_id)
        for flag, event_ids in changed.items():
            for ids in chunks(event_ids):
                await session.execute(
                    update(WebhookEvent)
                    .where(WebhookEvent.id.in_(ids))
                    .values(deliverable=flag)
                    .execution_options(synchronize_session=False)
                )
