"""Reorgs: is the chain really on another fork, and the walk back to the common ancestor
(docs/DESIGN.md §6)."""

from __future__ import annotations

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.evm.blocks import BlockHeader, fetch_header, parse_header
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError, RpcUnavailable
from stablegate.clock import Clock
from stablegate.models import ChainBlock
from stablegate.orders.context import OrderContext
from stablegate.payments import service as payments
from stablegate.watcher.cursor import CursorSnapshot
from stablegate.watcher.scan import InconsistentAnswer

log = structlog.get_logger("stablegate.watcher")

# Stored hashes compared per batch request while walking back: one node's view, not a mix.
WALK_BATCH = 50


async def diverges(rpc: RpcClient, number: int, ours: str) -> bool:
    """Does the chain really disagree with our stored hash at ``number``? One node saying
    so is not enough when others are there to ask: a node on another fork is set aside."""
    params = [hex(number), False]
    try:
        answers = [await rpc.call_elsewhere("eth_getBlockByNumber", params)]
    except RpcUnavailable:
        # No other node has an opinion: ask ours twice more (behind a load balancer
        # another node may answer), and act only on real answers.
        answers = [await rpc.call("eth_getBlockByNumber", params) for _ in range(2)]
        answers = [raw for raw in answers if raw]
        if not answers:
            raise InconsistentAnswer(f"no node confirms what block {number} is") from None
    if any(raw and str(raw.get("hash", "")).lower() == ours for raw in answers):
        rpc.demote_pinned(f"block {number} differs from the other nodes'")
        raise InconsistentAnswer(f"one node alone disagrees about block {number}")
    return True


async def common_ancestor(rpc: RpcClient, chain_id: int, snap: CursorSnapshot) -> BlockHeader:
    """The highest stored block the chain still agrees with. Deeper than the stored hashes,
    or below the final height (then only on more than one node's word): an operator alert."""
    ancestor: BlockHeader | None = None
    candidates = sorted(
        (number for number in snap.stored if number < snap.cursor_number), reverse=True
    )
    for start in range(0, len(candidates), WALK_BATCH):
        numbers = candidates[start : start + WALK_BATCH]
        answers = await rpc.batch_one_request(
            [("eth_getBlockByNumber", [hex(number), False]) for number in numbers]
        )
        for number, raw in zip(numbers, answers, strict=True):
            if raw and str(raw["hash"]).lower() == snap.stored[number]:
                ancestor = parse_header(raw)
                break
        if ancestor is not None:
            break
    if ancestor is None:
        lowest = min(snap.stored, default=snap.cursor_number)
        log.error(
            "operator_alert",
            alert="reorg deeper than the stored block hashes",
            chain_id=chain_id,
            lowest_stored=lowest,
        )
        ancestor = await fetch_header(rpc, max(lowest - 1, 0))
        if ancestor is None:
            raise RpcError(-1, "cannot read the common ancestor")
    if ancestor.number < snap.final_number:
        # Rewinding below the final height: only on more than one node's word.
        above = min((number for number in snap.stored if number > ancestor.number), default=None)
        if above is not None:
            await diverges(rpc, above, snap.stored[above])
        log.error(
            "operator_alert",
            alert="reorg below the final height",
            chain_id=chain_id,
            ancestor=ancestor.number,
            final=snap.final_number,
        )
    return ancestor


async def orphan_above(
    session: AsyncSession,
    clock: Clock,
    orders: OrderContext,
    *,
    chain_id: int,
    ancestor: int,
    final_time_ms: int,
) -> tuple[int, int]:
    """Inside the step's fenced transaction: orphan the payments above ``ancestor``, forget
    the block hashes above it and settle the orders again; (orders touched, orders changed)."""
    orphaned = await payments.orphan_above(session, clock, chain_id, ancestor)
    await session.execute(
        delete(ChainBlock).where(ChainBlock.chain_id == chain_id, ChainBlock.number > ancestor)
    )
    changed = await payments.settle_orders(
        session, clock, orders, orphaned, final_time_ms=final_time_ms, newly_seen={}
    )
    return len(orphaned), changed
