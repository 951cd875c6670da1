"""The write phase of a watcher step: what the step read from the chain, recorded in its one
fenced transaction (docs/DESIGN.md §6): block hashes, payments (attributed to their orders by
``payments/attribution.py``), finality, expiry, order settlement and outbox events.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import Chain
from stablegate.clock import Clock
from stablegate.models import ChainBlock
from stablegate.orders.context import OrderContext
from stablegate.payments import service as payments
from stablegate.payments.attribution import attribute
from stablegate.watcher.scan import ScannedRange
from stablegate.watcher.watched import WatchedAddresses


async def record_range(
    session: AsyncSession,
    clock: Clock,
    chain: Chain,
    orders: OrderContext,
    *,
    watched: WatchedAddresses,
    scanned: ScannedRange | None,
    stored: dict[int, str],
    cursor_number: int,
    final_number: int,
    processed_final: int,
    chain_time_ms: int,
    head_number: int,
    keep_blocks: int,
) -> int:
    """Inside the step's transaction, after the cursor moved; the number of orders changed.

    ``stored`` holds the block hashes the step read, ``processed_final`` the highest block both
    final and processed, ``chain_time_ms`` the time of that block (the clock for expiry).
    """
    headers = scanned.headers if scanned else {}
    transfers = scanned.transfers if scanned else []
    positions = scanned.positions if scanned else {}
    canonical = dict(stored)
    for number, header in headers.items():
        canonical[number] = header.hash
        if number > final_number - keep_blocks or number == cursor_number:
            await session.merge(
                ChainBlock(
                    chain_id=chain.id,
                    number=number,
                    hash=header.hash,
                    parent_hash=header.parent_hash,
                    time_ms=header.time_ms,
                )
            )
    attributed = await attribute(session, chain_id=chain.id, watched=watched, transfers=transfers)
    observed = [
        payments.ObservedTransfer(
            transfer=item.transfer,
            log_position=positions[(item.transfer.tx_hash, item.transfer.log_index)],
            block_time_ms=headers[item.transfer.block_number].time_ms,
            order_id=item.order_id,
        )
        for item in attributed
    ]
    newly_seen = await payments.record_transfers(
        session, clock, chain, observed, final_height=processed_final
    )
    finalized = await payments.finalize_up_to(session, clock, chain.id, processed_final, canonical)
    expiring = await payments.expiry_candidates(session, chain.id, chain_time_ms)
    changed = await payments.settle_orders(
        session,
        clock,
        orders,
        set(newly_seen) | finalized | set(expiring),
        final_time_ms=chain_time_ms,
        newly_seen=newly_seen,
    )
    await payments.update_confirmations(session, chain.id, head_number)
    await session.execute(
        delete(ChainBlock).where(
            ChainBlock.chain_id == chain.id,
            ChainBlock.number < final_number - keep_blocks,
            ChainBlock.number != cursor_number,
        )
    )
    return changed
