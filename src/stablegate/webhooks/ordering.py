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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    String,
    Table,
    Update,
    any_,
    bindparam,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from stablegate.models import Order, WebhookEvent
from stablegate.models.webhook_event import EventStatus
from stablegate.webhooks.schedule import ORDER_RELEASE_ATTEMPTS

PENDING = EventStatus.PENDING
T = TypeVar("T")
EVENTS = cast(Table, WebhookEvent.__table__)
ORDERS = cast(Table, Order.__table__)
# What the statements here run on: a session (services) or a Core connection (the worker's hot
# path, which skips the ORM's per-statement work); both execute Core statements alike.
Executor = AsyncSession | AsyncConnection
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


def dialect_of(session: Executor) -> str:
    if isinstance(session, AsyncConnection):
        return session.dialect.name
    return session.get_bind().dialect.name


def ids_in(column: ColumnElement[str], dialect: str, name: str = "ids") -> ColumnElement[bool]:
    """``column`` in the list bound as ``name``: ``= ANY(array)`` on PostgreSQL, so one prepared
    statement serves every list length (an expanded ``IN`` is new SQL for each length, and
    asyncpg prepares each anew once its cache of 100 is full); an expanded ``IN`` on SQLite."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(String)))
    return column.in_(bindparam(name, expanding=True))


def _by_dialect(build: Callable[[str], T]) -> Callable[[str], T]:
    """``build(dialect)`` once per dialect: the statement objects, and so their compiled SQL,
    are reused by every call."""
    built: dict[str, T] = {}

    def get(dialect: str) -> T:
        statement = built.get(dialect)
        if statement is None:
            statement = built[dialect] = build(dialect)
        return statement

    return get


@_by_dialect
def _lock_orders_statement(dialect: str) -> Select[str]:
    return (
        select(ORDERS.c.id)
        .where(ids_in(ORDERS.c.id, dialect))
        .order_by(ORDERS.c.id.collate("C"))
        .with_for_update()
    )


@_by_dialect
def _events_statement(dialect: str) -> Select[str, str, int, str, int, bool, int | None]:
    events = EVENTS
    return (
        select(
            events.c.order_id,
            events.c.id,
            events.c.sequence,
            events.c.status,
            events.c.attempts,
            events.c.deliverable,
            events.c.lease_until_ms,
        )
        .where(ids_in(events.c.order_id, dialect))
        .order_by(events.c.order_id, events.c.sequence)
    )


@_by_dialect
def _flag_statement(dialect: str) -> Update:
    events = EVENTS
    return (
        update(events)
        .where(ids_in(events.c.id, dialect))
        .values(deliverable=bindparam("flag", type_=Boolean))
    )


async def lock_orders(session: Executor, order_ids: Iterable[str]) -> None:
    """Take the row locks of these orders in ascending id order, as ``settle_orders`` does
    (byte order, ``COLLATE "C"``: the database's collation may sort ids differently).

    SQLite needs none: its write transactions start ``IMMEDIATE`` and never overlap.
    """
    dialect = dialect_of(session)
    if dialect == "sqlite":
        return
    for chunk in chunks(order_ids):
        await session.execute(_lock_orders_statement(dialect), {"ids": chunk})


@dataclass
class EventRow:
    """What the rule reads of one event (and, for the worker's record step, its lease)."""

    id: str
    sequence: int
    status: str
    attempts: int
    deliverable: bool
    lease_until_ms: int | None


async def read_events(
    session: Executor, order_ids: Iterable[str], *, lock: bool = False
) -> dict[str, list[EventRow]]:
    """Every event of these orders, oldest first per order (the caller holds their locks).

    Read by ``order_id`` alone: the only index that can serve that read is
    ``(order_id, sequence)``, whatever the statistics say (a ``status = 'pending'`` term would
    let a planner that thinks nothing is pending pick ``ix_webhook_events_status`` and scan
    every pending row). ``lock``: the rows are also locked ``FOR UPDATE`` on PostgreSQL, so
    not even a claim (which takes no order lock) changes them until the transaction ends.
    """
    dialect = dialect_of(session)
    statement = _events_statement(dialect)
    if lock and dialect == "postgresql":
        statement = statement.with_for_update()
    by_order: dict[str, list[EventRow]] = {}
    for chunk in chunks(order_ids):
        rows = await session.execute(statement, {"ids": chunk})
        for order_id, event_id, sequence, status, attempts, deliverable, lease in rows.all():
            by_order.setdefault(order_id, []).append(
                EventRow(event_id, sequence, status, attempts, bool(deliverable), lease)
            )
    return by_order


async def store_flags(session: Executor, by_order: dict[str, list[EventRow]]) -> None:
    """Work the rule out over each order's events as given and write the flags that changed."""
    changed: dict[bool, list[str]] = {True: [], False: []}
    for events in by_order.values():
        rule = flags((e.id, e.status, e.attempts) for e in events)
        for event in events:
            if event.deliverable != rule[event.id]:
                changed[rule[event.id]].append(event.id)
                event.deliverable = rule[event.id]
    statement = _flag_statement(dialect_of(session))
    for flag, event_ids in changed.items():
        for ids in chunks(event_ids):
            await session.execute(statement, {"ids": ids, "flag": flag})


async def refresh(session: AsyncSession, order_ids: Iterable[str]) -> None:
    """Recompute ``deliverable`` for every event of these orders (the caller holds their locks).
    Only changed flags are written."""
    await store_flags(session, await read_events(session, order_ids))
