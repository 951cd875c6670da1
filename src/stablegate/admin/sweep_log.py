"""What the sweeper did and has left to do, for the console: the latest sweep transactions and
the deposits waiting per chain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.models import SweepItem, SweepTx
from stablegate.models.sweep import SweepItemStatus
from stablegate.sweeper.service import sweep_candidates

RECENT = 50
# Deposits the sweeper has yet to flush (or is flushing).
WAITING = (SweepItemStatus.PENDING, SweepItemStatus.RETRY, SweepItemStatus.SENT)


async def recent_sweeps(session: AsyncSession, *, limit: int = RECENT) -> list[tuple[SweepTx, int]]:
    """The latest sweep transactions, newest first, each with its number of deposits."""
    items = (
        select(func.count())
        .where(SweepItem.sweep_tx_id == SweepTx.id)
        .correlate(SweepTx)
        .scalar_subquery()
    )
    rows = await session.execute(select(SweepTx, items).order_by(SweepTx.id.desc()).limit(limit))
    return [(tx, int(count)) for tx, count in rows.all()]


async def sweep_backlog(
    session: AsyncSession, chain_ids: Sequence[int] = ()
) -> dict[int, dict[str, int]]:
    """Per chain: deposits waiting to be swept, and those the sweeper gave up on (``stuck``).

    Waiting is the sweeper's open items plus, on each of ``chain_ids``, the final credited money
    it has not opened an item for yet (its own :func:`sweep_candidates`; an item is opened once
    the deposit's balance reaches the chain's sweep minimum, so dust stays counted here)."""
    rows = await session.execute(
        select(SweepItem.chain_id, SweepItem.status, func.count())
        .where(SweepItem.status.in_([*WAITING, SweepItemStatus.STUCK]))
        .group_by(SweepItem.chain_id, SweepItem.status)
    )
    backlog: dict[int, dict[str, int]] = {}
    for chain_id, status, count in rows.all():
        counts = backlog.setdefault(int(chain_id), {"waiting": 0, "stuck": 0})
        counts["stuck" if status == SweepItemStatus.STUCK else "waiting"] += int(count)
    for chain_id in chain_ids:
        unopened = len(await sweep_candidates(session, chain_id))
        if unopened:
            backlog.setdefault(chain_id, {"waiting": 0, "stuck": 0})["waiting"] += unopened
    return backlog
