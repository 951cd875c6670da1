"""Where the watcher starts on a chain it has never watched (docs/DESIGN.md §6): just before
the oldest order still watched, found by binary search on block timestamps, else the head."""

from __future__ import annotations

from stablegate.chain.evm.blocks import BlockHeader, fetch_header
from stablegate.chain.evm.rpc import RpcClient

# Start this long before the oldest order: its deposit may have been paid at once.
START_MARGIN_MS = 5 * 60_000


async def start_block(
    rpc: RpcClient, head: BlockHeader, oldest_order_ms: int | None
) -> BlockHeader:
    if oldest_order_ms is None:
        return head
    return await block_at_time(rpc, oldest_order_ms - START_MARGIN_MS, head)


async def block_at_time(rpc: RpcClient, time_ms: int, head: BlockHeader) -> BlockHeader:
    """The last block at or before ``time_ms`` (binary search on timestamps)."""
    low, high = 0, head.number
    best = await fetch_header(rpc, 0)
    if best is None or best.time_ms > time_ms:
        return best or head
    while low < high:
        middle = (low + high + 1) // 2
        header = await fetch_header(rpc, middle)
        if header is None:
            break
        if header.time_ms <= time_ms:
            low, best = middle, header
        else:
            high = middle - 1
    return best
