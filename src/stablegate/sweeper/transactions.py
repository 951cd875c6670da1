"""Sweep transactions in the database: stored signed BEFORE broadcast, fee bumps of the same
nonce, and the outcome of the one that mined. Functions take a session and flush, never commit.

States: ``signed`` (stored, maybe not broadcast) -> ``broadcast`` -> ``mined`` | ``failed``
(mined but reverted) | ``replaced`` (its nonce was used by a transaction not ours).
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import SweepItem, SweepTx
from stablegate.models.sweep import SweepItemStatus, SweepTxStatus
from stablegate.money import format_amount
from stablegate.sweeper.batch import ItemOutcome, SignedBatch, Verdict, describe, judge_failure
from stablegate.sweeper.fees import within_budget
from stablegate.sweeper.options import SweepOptions
from stablegate.sweeper.service import ItemResult, claim_items, fail_item, item_result
from stablegate.sweeper.state import (
    UNRESOLVED_TX,
    ItemTrigger,
    TxTrigger,
    item_transition,
    tx_transition,
)

log = structlog.get_logger("stablegate.sweeper")


async def unresolved_txs(session: AsyncSession, chain_id: int) -> list[SweepTx]:
    rows = await session.scalars(
        select(SweepTx)
        .where(SweepTx.chain_id == chain_id, SweepTx.status.in_(UNRESOLVED_TX))
        .order_by(SweepTx.nonce)
    )
    return list(rows.all())


async def highest_nonce(session: AsyncSession, chain_id: int, sender: str) -> int | None:
    rows = await session.scalars(
        select(SweepTx.nonce)
        .where(SweepTx.chain_id == chain_id, SweepTx.sender == sender)
        .order_by(SweepTx.nonce.desc())
        .limit(1)
    )
    return rows.first()


async def committed_spend(session: AsyncSession, chain_id: int, sender: str, since_ms: int) -> int:
    """Fees paid since ``since_ms`` plus the worst case of transactions still in flight."""
    rows = await session.execute(
        select(SweepTx.status, SweepTx.fee_paid, SweepTx.gas_limit, SweepTx.max_fee_per_gas).where(
            SweepTx.chain_id == chain_id,
            SweepTx.sender == sender,
            or_(SweepTx.status.in_(UNRESOLVED_TX), SweepTx.updated_at_ms >= since_ms),
        )
    )
    total = 0
    for status, paid, gas_limit, max_fee in rows.all():
        total += gas_limit * max_fee if status in UNRESOLVED_TX else paid or 0
    return total


async def record_signed(
    session: AsyncSession,
    clock: Clock,
    chain_id: int,
    sender: str,
    signed: SignedBatch,
    item_ids: Sequence[int],
) -> SweepTx:
    """Store the signed transaction and claim its items, before anything is broadcast."""
    now = clock.now_ms()
    tx = SweepTx(
        chain_id=chain_id,
        sender=sender,
        nonce=signed.nonce,
        tx_hash=signed.tx_hash,
        raw_tx=signed.raw_tx,
        max_fee_per_gas=signed.max_fee_per_gas,
        max_priority_fee_per_gas=signed.max_priority_fee_per_gas,
        gas_limit=signed.gas_limit,
        status=tx_transition(None, TxTrigger.SIGNED),
        replaced_hashes="",
        created_at_ms=now,
        updated_at_ms=now,
    )
    session.add(tx)
    await session.flush()
    await claim_items(session, clock, tx.id, item_ids)
    return tx


async def record_bump(
    session: AsyncSession, clock: Clock, tx_id: int, signed: SignedBatch
) -> SweepTx:
    """The same nonce re-signed with higher fees; earlier hashes stay watched."""
    tx = await _tx(session, tx_id)
    if tx.nonce != signed.nonce:
        raise ValueError("a fee bump must keep the nonce")
    tx.replaced_hashes = " ".join([*replaced_hashes(tx), tx.tx_hash])
    tx.tx_hash = signed.tx_hash
    tx.raw_tx = signed.raw_tx
    tx.max_fee_per_gas = signed.max_fee_per_gas
    tx.max_priority_fee_per_gas = signed.max_priority_fee_per_gas
    tx.status = tx_transition(tx.status, TxTrigger.FEE_BUMPED)
    tx.updated_at_ms = clock.now_ms()
    await session.flush()
    return tx


def replaced_hashes(tx: SweepTx) -> list[str]:
    return tx.replaced_hashes.split() if tx.replaced_hashes else []


async def mark_broadcast(session: AsyncSession, tx_id: int, tx_hash: str) -> None:
    tx = await _tx(session, tx_id)
    if tx.status == SweepTxStatus.SIGNED and tx.tx_hash == tx_hash:
        tx.status = tx_transition(tx.status, TxTrigger.BROADCAST)
        await session.flush()


async def settle_mined(
    session: AsyncSession,
    clock: Clock,
    options: SweepOptions,
    tx_id: int,
    *,
    mined_hash: str,
    succeeded: bool,
    block_number: int,
    gas_used: int,
    fee: int,
    outcomes: Sequence[ItemOutcome],
) -> list[ItemResult]:
    """Record a mined transaction (whichever of its hashes mined) and each item's outcome."""
    tx = await _tx(session, tx_id)
    if tx.tx_hash != mined_hash:
        # An earlier fee level mined: that hash is the transaction of record.
        others = [h for h in [*replaced_hashes(tx), tx.tx_hash] if h != mined_hash]
        tx.replaced_hashes = " ".join(others)
        tx.tx_hash = mined_hash
    tx.status = tx_transition(tx.status, TxTrigger.MINED if succeeded else TxTrigger.REVERTED)
    tx.block_number = block_number
    tx.gas_used = gas_used
    tx.fee_paid = fee
    tx.updated_at_ms = clock.now_ms()
    by_key = {o.key: o for o in outcomes}
    results: list[ItemResult] = []
    for item in await _items_of(session, tx.id):
        outcome = by_key.get((item.deposit_address.lower(), item.token_address.lower()))
        if outcome is None:
            why = "batch reverted" if not succeeded else "no event for this item"
            results.append(fail_item(clock, options, item, Verdict.RETRY, why))
        elif outcome.flushed:
            item.swept_amount += outcome.amount
            item.status = item_transition(item.status, ItemTrigger.FLUSHED)
            item.last_error = None
            item.updated_at_ms = clock.now_ms()
            results.append(item_result(item, Verdict.DONE, outcome.amount, None))
        else:
            verdict, why = judge_failure(outcome.reason), describe(outcome.reason)
            results.append(fail_item(clock, options, item, verdict, why))
    await session.flush()
    return results


async def release_items(
    session: AsyncSession, clock: Clock, tx_id: int, trigger: TxTrigger, reason: str
) -> None:
    """The transaction can never mine (its nonce went to another): its items are due again."""
    tx = await _tx(session, tx_id)
    tx.status = tx_transition(tx.status, trigger)
    tx.updated_at_ms = clock.now_ms()
    for item in await _items_of(session, tx.id):
        item.status = item_transition(item.status, ItemTrigger.RELEASED)
        item.last_error = reason
        item.updated_at_ms = clock.now_ms()
    await session.flush()


async def affordable(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    options: SweepOptions,
    chain_id: int,
    sender: str,
    extra: int,
) -> bool:
    """May the relayer commit ``extra`` more wei of fees within this budget period?"""
    since = clock.now_ms() - options.budget_period_ms
    async with session_scope(sessions) as session:
        committed = await committed_spend(session, chain_id, sender, since)
    if within_budget(committed, extra, options.budget_wei):
        return True
    log.warning(
        "sweep_budget_exhausted",
        chain_id=chain_id,
        committed=format_amount(committed, 18),
        needed=format_amount(extra, 18),
        budget=format_amount(options.budget_wei, 18),
    )
    return False


async def _tx(session: AsyncSession, tx_id: int) -> SweepTx:
    tx = await session.get(SweepTx, tx_id, populate_existing=True)
    if tx is None:
        raise LookupError(f"sweep transaction {tx_id} is gone")
    return tx


async def _items_of(session: AsyncSession, tx_id: int) -> list[SweepItem]:
    rows = await session.scalars(
        select(SweepItem)
        .where(SweepItem.sweep_tx_id == tx_id, SweepItem.status == SweepItemStatus.SENT)
        .order_by(SweepItem.id)
    )
    return list(rows.all())
