"""Sweep items in the database: which (deposit, token) to flush, and what became of each.
Functions take a session and flush, never commit.

Item states: ``pending`` (due now) -> ``sent`` (in a signed transaction) -> ``done`` (flushed, or
nothing left to flush) | ``retry`` (failed, due again at ``next_attempt_at_ms``) | ``stuck``
(an operator must act: payout barred, attempts exhausted, payout not matching the deposit).
A ``done`` item reopens as ``pending`` when more final credited funds arrive. Items keep the
(payout, salt) copied from their order; the transactions are in ``transactions.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.models import Order, Payment, SweepItem, SweepTx
from stablegate.models.merchant import DepositStrategy
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.models.sweep import SweepItemStatus
from stablegate.sweeper.batch import Verdict
from stablegate.sweeper.options import SweepOptions
from stablegate.sweeper.state import ItemTrigger, item_transition

log = structlog.get_logger("stablegate.sweeper")


@dataclass(frozen=True)
class Candidate:
    """A (deposit, token) holding final credited funds not yet swept."""

    order_id: str
    deposit_address: str
    payout_address: str
    deposit_salt: str
    token_address: str
    credited: int
    swept: int


async def sweep_candidates(session: AsyncSession, chain_id: int) -> list[Candidate]:
    """Deposits whose final credited payments exceed what was swept from them (no item yet, or a
    ``done`` item). Only ``credit`` payments that are final count: ``seen`` money never does."""
    rows = await session.execute(
        select(
            Order.id,
            Order.to_address,
            Order.payout_address,
            Order.deposit_salt,
            Payment.token_address,
            Payment.amount,
            SweepItem.swept_amount,
        )
        .join(Order, Order.id == Payment.order_id)
        .outerjoin(
            SweepItem,
            and_(
                SweepItem.chain_id == Payment.chain_id,
                SweepItem.deposit_address == Order.to_address,
                SweepItem.token_address == Payment.token_address,
            ),
        )
        .where(
            Payment.chain_id == chain_id,
            Payment.status == PaymentStatus.FINAL,
            Payment.kind == PaymentKind.CREDIT,
            Payment.credited.is_(True),
            Order.deposit_strategy == DepositStrategy.FORWARDER,
            Order.deposit_salt.is_not(None),
            or_(SweepItem.id.is_(None), SweepItem.status == SweepItemStatus.DONE),
        )
    )
    # Amounts are summed in Python: SQLite stores them as strings (db/types.py).
    totals: dict[tuple[str, str], tuple[Candidate, int]] = {}
    for order_id, deposit, payout, salt, token, amount, swept in rows.all():
        key = (deposit, token)
        base = Candidate(order_id, deposit, payout, salt or "", token, 0, swept or 0)
        _, credited = totals.get(key, (base, 0))
        totals[key] = (base, credited + amount)
    return [
        Candidate(
            c.order_id,
            c.deposit_address,
            c.payout_address,
            c.deposit_salt,
            c.token_address,
            credited,
            c.swept,
        )
        for c, credited in totals.values()
        if credited > c.swept
    ]


async def open_items(
    session: AsyncSession, clock: Clock, chain_id: int, found: Iterable[Candidate]
) -> int:
    """Make each candidate's item ``pending``: a new row, or a ``done`` one reopened."""
    now = clock.now_ms()
    opened = 0
    for c in found:
        item = await session.scalar(
            select(SweepItem).where(
                SweepItem.chain_id == chain_id,
                SweepItem.deposit_address == c.deposit_address,
                SweepItem.token_address == c.token_address,
            )
        )
        if item is None:
            session.add(
                SweepItem(
                    chain_id=chain_id,
                    order_id=c.order_id,
                    deposit_address=c.deposit_address,
                    payout_address=c.payout_address,
                    deposit_salt=c.deposit_salt,
                    token_address=c.token_address,
                    status=item_transition(None, ItemTrigger.OPENED),
                    attempts=0,
                    swept_amount=0,
                    next_attempt_at_ms=0,
                    created_at_ms=now,
                    updated_at_ms=now,
                )
            )
        elif item.status == SweepItemStatus.DONE:
            item.status = item_transition(item.status, ItemTrigger.OPENED)
            item.attempts = 0
            item.last_error = None
            item.next_attempt_at_ms = 0
            item.updated_at_ms = now
        else:
            continue
        opened += 1
    await session.flush()
    return opened


async def due_items(
    session: AsyncSession, chain_id: int, now_ms: int, limit: int
) -> list[SweepItem]:
    rows = await session.scalars(
        select(SweepItem)
        .where(
            SweepItem.chain_id == chain_id,
            or_(
                SweepItem.status == SweepItemStatus.PENDING,
                and_(
                    SweepItem.status == SweepItemStatus.RETRY,
                    SweepItem.next_attempt_at_ms <= now_ms,
                ),
            ),
        )
        .order_by(SweepItem.next_attempt_at_ms, SweepItem.id)
        .limit(limit)
    )
    return list(rows.all())


async def fail_items(
    session: AsyncSession,
    clock: Clock,
    options: SweepOptions,
    item_ids: Sequence[int],
    verdict: Verdict,
    reason: str,
) -> None:
    """Items refused before signing (payout mismatch, an item exhausting the gas)."""
    for item in await _items(session, item_ids):
        if verdict is Verdict.RETRY:
            item.attempts += 1
        fail_item(clock, options, item, verdict, reason)
    await session.flush()


async def claim_items(
    session: AsyncSession, clock: Clock, tx_id: int, item_ids: Sequence[int]
) -> None:
    """The items of a transaction just signed: ``sent``, one attempt more."""
    for item in await _items(session, item_ids):
        item.status = item_transition(item.status, ItemTrigger.SIGNED)
        item.sweep_tx_id = tx_id
        item.attempts += 1
        item.updated_at_ms = clock.now_ms()
    await session.flush()


@dataclass(frozen=True)
class ItemResult:
    item_id: int
    order_id: str | None
    token_address: str
    verdict: Verdict
    amount: int
    reason: str | None


def fail_item(
    clock: Clock, options: SweepOptions, item: SweepItem, verdict: Verdict, reason: str
) -> ItemResult:
    now = clock.now_ms()
    item.last_error = reason[:1000]
    item.updated_at_ms = now
    if verdict is Verdict.DONE:
        item.status = item_transition(item.status, ItemTrigger.ALREADY_EMPTY)
        return item_result(item, Verdict.DONE, 0, reason)
    if verdict is Verdict.RETRY and item.attempts < options.max_attempts:
        item.status = item_transition(item.status, ItemTrigger.FAILED_RETRY)
        item.next_attempt_at_ms = now + options.retry_delay_ms(item.attempts)
        return item_result(item, Verdict.RETRY, 0, reason)
    item.status = item_transition(item.status, ItemTrigger.FAILED_STUCK)
    log.error(
        "operator_alert",
        alert="sweep item stuck: funds stay in the deposit contract until an operator acts",
        chain_id=item.chain_id,
        order_id=item.order_id,
        deposit_address=item.deposit_address,
        payout_address=item.payout_address,
        token=item.token_address,
        attempts=item.attempts,
        reason=reason,
    )
    return item_result(item, Verdict.STUCK, 0, reason)


def item_result(item: SweepItem, verdict: Verdict, amount: int, reason: str | None) -> ItemResult:
    return ItemResult(item.id, item.order_id, item.token_address, verdict, amount, reason)


async def requeue_stuck(
    session: AsyncSession, clock: Clock, chain_id: int, item_ids: Sequence[int] | None = None
) -> int:
    """Operator action once the cause is fixed (e.g. payout unblocked): stuck items go pending."""
    query = select(SweepItem).where(
        SweepItem.chain_id == chain_id, SweepItem.status == SweepItemStatus.STUCK
    )
    if item_ids is not None:
        query = query.where(SweepItem.id.in_(item_ids))
    items = list((await session.scalars(query)).all())
    for item in items:
        item.status = item_transition(item.status, ItemTrigger.REQUEUED)
        item.attempts = 0
        item.next_attempt_at_ms = 0
        item.updated_at_ms = clock.now_ms()
    await session.flush()
    return len(items)


@dataclass(frozen=True)
class OrderSweep:
    """What the sweeper did for one token of an order, for the order API."""

    token_address: str
    deposit_address: str
    payout_address: str
    status: SweepItemStatus
    swept_amount: int
    attempts: int
    last_error: str | None
    tx_hash: str | None
    updated_at_ms: int


async def sweeps_for_order(session: AsyncSession, order_id: str) -> list[OrderSweep]:
    rows = await session.execute(
        select(SweepItem, SweepTx.tx_hash)
        .outerjoin(SweepTx, SweepTx.id == SweepItem.sweep_tx_id)
        .where(SweepItem.order_id == order_id)
        .order_by(SweepItem.id)
    )
    return [
        OrderSweep(
            token_address=item.token_address,
            deposit_address=item.deposit_address,
            payout_address=item.payout_address,
            status=item.status,
            swept_amount=item.swept_amount,
            attempts=item.attempts,
            last_error=item.last_error,
            tx_hash=tx_hash,
            updated_at_ms=item.updated_at_ms,
        )
        for item, tx_hash in rows.all()
    ]


async def _items(session: AsyncSession, item_ids: Sequence[int]) -> list[SweepItem]:
    if not item_ids:
        return []
    rows = await session.scalars(
        select(SweepItem).where(SweepItem.id.in_(item_ids)).order_by(SweepItem.id)
    )
    return list(rows.all())
