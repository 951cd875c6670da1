"""Block headers as the watcher needs them: number, hash, parent hash, time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError


@dataclass(frozen=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    time_ms: int


class BlockUnavailable(RpcError):
    """The node has no such block (yet, or no longer): retry later."""

    def __init__(self, block: int | str) -> None:
        super().__init__(-1, f"block {block} unavailable")


def parse_header(raw: dict[str, Any]) -> BlockHeader:
    return BlockHeader(
        number=int(str(raw["number"]), 16),
        hash=str(raw["hash"]).lower(),
        parent_hash=str(raw["parentHash"]).lower(),
        time_ms=int(str(raw["timestamp"]), 16) * 1000,
    )


async def fetch_header(rpc: RpcClient, block: int | str) -> BlockHeader | None:
    """A header by number or tag ("latest", "finalized"); None when the node has none."""
    tag = hex(block) if isinstance(block, int) else block
    raw = await rpc.call("eth_getBlockByNumber", [tag, False])
    if not raw:
        return None
    return parse_header(raw)


async def fetch_headers(rpc: RpcClient, numbers: list[int]) -> dict[int, BlockHeader]:
    """Headers of many blocks; one JSON-RPC batch where the client supports it."""
    if not numbers:
        return {}
    batch = getattr(rpc, "batch", None)
    if batch is not None:
        raws = await batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    else:
        raws = await asyncio.gather(
            *(rpc.call("eth_getBlockByNumber", [hex(n), False]) for n in numbers)
        )
    headers: dict[int, BlockHeader] = {}
    for number, raw in zip(numbers, raws, strict=True):
        if not raw:
            raise BlockUnavailable(number)
        header = parse_header(raw)
        if header.number != number:
            raise RpcError(-1, f"node answered block {header.number} for {number}")
        headers[number] = header
    return headers
