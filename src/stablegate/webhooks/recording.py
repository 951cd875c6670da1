"""Recording finished delivery attempts, many in one transaction (the worker's record step).

For each attempt: one ``webhook_deliveries`` row, always (a worker whose lease ran out still
logs what it sent), and, while its claim still holds (the event ``pending`` with the lease value
and attempt count it was claimed with), the event's outcome: ``delivered``, its next attempt on
the schedule, ``failed`` after 72 h, or ``no_endpoint``. Then the orders' ``deliverable`` flags
(:mod:`stablegate.webhooks.ordering`). Statements per batch, whatever its size: the orders'
locks (PostgreSQL), one read of their events, one read of first-attempt times when a retry
failed, one INSERT and one UPDATE (both run with a list of parameter sets), the changed flags.

The batch is worked out as if its attempts were recorded one after another: each is checked
against the events as the earlier ones left them. The orders' locks and the events' row locks
(``FOR UPDATE`` on PostgreSQL; on SQLite the write transaction is exclusive) keep what was read
true until the commit, so the flags written are those of the stored rows. The UPDATE keeps its
lease guard all the same. The caller commits (the worker runs it on a Core connection).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import BigInteger, Integer, String, Table, bindparam, func, insert, select, update

from stablegate.models import WebhookDelivery
from stablegate.models.webhook_event import EventStatus
from stablegate.webhooks.claims import Claim
from stablegate.webhooks.ordering import (
    EVENTS,
    EventRow,
    Executor,
    chunks,
    dialect_of,
    ids_in,
    lock_orders,
    read_events,
    store_flags,
)
from stablegate.webhooks.schedule import next_attempt_at_ms
from stablegate.webhooks.service import Outcome
from stablegate.webhooks.state import EventTrigger, transition

PENDING = EventStatus.PENDING


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    url: str
    attempted_at_ms: int
    latency_ms: int
    status_code: int | None = None
    body: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Recorded:
    """What recording did with one attempt (for its log line)."""

    next_attempt_at_ms: int | None  # a failed attempt's next one, when there is one
    lease_lost: bool  # the claim no longer held: only the delivery row was written


_events = EVENTS
_deliveries = cast(Table, WebhookDelivery.__table__)
_INSERT_DELIVERY = insert(_deliveries)
# Run with one parameter set per attempt (an executemany); the guard is the claim's.
_UPDATE_EVENT = (
    update(_events)
    .where(
        _events.c.id == bindparam("claimed_id", type_=String),
        _events.c.status == PENDING,
        _events.c.lease_until_ms == bindparam("claimed_lease", type_=BigInteger),
        _events.c.attempts == bindparam("claimed_attempts", type_=Integer),
    )
    .values(
        lease_until_ms=None,
        status=bindparam("new_status", type_=String),
        attempts=bindparam("new_attempts", type_=Integer),
        next_attempt_at_ms=func.coalesce(
            bindparam("new_next_at", type_=BigInteger), _events.c.next_attempt_at_ms
        ),
    )
)


async def record_attempts(
    session: Executor,
    attempts: Sequence[tuple[Claim, AttemptResult]],
    *,
    now_ms: int,
    rng: random.Random,
) -> list[Recorded]:
    """Record ``attempts`` (in the order given) in the caller's transaction."""
    order_ids = {claim.order_id for claim, _ in attempts}
    # The orders' locks before any of their rows: the outcomes may let their next events go.
    await lock_orders(session, order_ids)
    by_order = await read_events(session, order_ids, lock=True)
    rows = {event.id: event for events in by_order.values() for event in events}
    retried = [
        claim.event_id
        for claim, result in attempts
        if claim.attempt > 1 and result.outcome in (Outcome.FAILURE, Outcome.ERROR)
    ]
    first_attempts = await _first_attempts_ms(session, retried) if retried else {}
    deliveries: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    recorded: list[Recorded] = []
    for claim, result in attempts:
        skipped = result.outcome == Outcome.SKIPPED
        deliveries.append(
            {
                "event_id": claim.event_id,
                "merchant_id": claim.merchant_id,
                "attempt": 0 if skipped else claim.attempt,
                "url": storable(result.url),
                "outcome": result.outcome.value,
                "response_status": result.status_code,
                "response_body": result.body,
                "error": None if result.error is None else storable(result.error),
                "latency_ms": result.latency_ms,
                "attempted_at_ms": result.attempted_at_ms,
            }
        )
        row = rows.get(claim.event_id)
        if not _holds(claim, row):
            recorded.append(Recorded(None, lease_lost=True))
            continue
        assert row is not None
        attempts_now = claim.attempt - 1 if skipped else claim.attempt
        next_at: int | None = None
        if skipped:
            status = transition(PENDING, EventTrigger.NO_ENDPOINT)
        elif result.outcome == Outcome.SUCCESS:
            status = transition(PENDING, EventTrigger.DELIVERED)
        else:
            first = result.attempted_at_ms
            if claim.attempt > 1:
                first = first_attempts.get(claim.event_id, claim.created_at_ms)
            next_at = next_attempt_at_ms(
                failed_attempts=claim.attempt,
                first_attempt_ms=first,
                last_attempt_end_ms=now_ms,
                rng=rng,
            )
            if next_at is None:
                status = transition(PENDING, EventTrigger.GAVE_UP)
            else:
                # transition(PENDING, ATTEMPT_FAILED) keeps it pending: only the schedule.
                status = transition(PENDING, EventTrigger.ATTEMPT_FAILED)
        updates.append(
            {
                "claimed_id": claim.event_id,
                "claimed_lease": claim.lease_until_ms,
                "claimed_attempts": claim.attempt - 1,
                "new_status": status.value,
                "new_attempts": attempts_now,
                "new_next_at": next_at,
            }
        )
        row.status, row.attempts, row.lease_until_ms = status, attempts_now, None
        recorded.append(Recorded(next_at, lease_lost=False))
    await session.execute(_INSERT_DELIVERY, deliveries)
    if updates:
        await session.execute(_UPDATE_EVENT, updates)
        await store_flags(session, by_order)
    return recorded


def _holds(claim: Claim, row: EventRow | None) -> bool:
    """Whether the claim's lease still holds on the event as it stands."""
    return (
        row is not None
        and row.status == PENDING
        and row.lease_until_ms == claim.lease_until_ms
        and row.attempts == claim.attempt - 1
    )


async def _first_attempts_ms(session: Executor, event_ids: Sequence[str]) -> dict[str, int]:
    """When each event's current round made its attempt 1 (rounds restart at 1 on resend)."""
    deliveries = _deliveries
    statement = (
        select(deliveries.c.event_id, func.max(deliveries.c.attempted_at_ms))
        .where(ids_in(deliveries.c.event_id, dialect_of(session)), deliveries.c.attempt == 1)
        .group_by(deliveries.c.event_id)
    )
    found: dict[str, int] = {}
    for chunk in chunks(event_ids):
        for event_id, first in (await session.execute(statement, {"ids": chunk})).all():
            if first is not None:
                found[event_id] = int(first)
    return found


def log_text(raw: bytes) -> str | None:
    """A response body prefix as text safe to store."""
    if not raw:
        return None
    return storable(raw.decode("utf-8", errors="replace"))


def storable(text: str) -> str:
    """Text PostgreSQL can hold (no NUL); a URL stored by an older version may have one."""
    return text.replace("\x00", "\ufffd")
