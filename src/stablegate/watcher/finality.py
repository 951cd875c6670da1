"""How the watcher tells a block is final on one chain (docs/DESIGN.md §4).

The mode is decided once per process: the node's ``finalized`` tag when it answers one, else
the head minus the chain's ``confirmations``. A chain in tag mode never falls back to counting:
when the tag fails or stops moving, orders stop completing (and an operator alert says so).
"""

from __future__ import annotations

import structlog

from stablegate.chain.evm.blocks import BlockHeader, fetch_header, parse_header
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.clock import Clock
from stablegate.models.chain_state import FinalityMode
from stablegate.watcher.cursor import CursorSnapshot

log = structlog.get_logger("stablegate.watcher")


class Finality:
    def __init__(
        self,
        rpc: RpcClient,
        clock: Clock,
        *,
        chain_id: int,
        confirmations: int,
        stall_alert_ms: int,
    ) -> None:
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.rpc = rpc
        self.clock = clock
        self.stall_alert_ms = stall_alert_ms
        self.mode: FinalityMode | None = None  # None until decided
        self.stalled = False  # the finalized tag has not moved for stall_alert_ms

    async def decide(self) -> None:
        """Tag or count, once: does the node answer the ``finalized`` tag?"""
        if self.mode is not None:
            return
        probe = await fetch_header(self.rpc, "latest")
        if probe is None:
            raise RpcError(-1, "node returned no latest block")
        await self.final_header(probe)

    async def final_header(self, head: BlockHeader) -> BlockHeader | None:
        """The node's finalized block, or head minus confirmations on chains without the tag."""
        if self.mode is None:
            try:
                tagged = await fetch_header(self.rpc, "finalized")
            except RpcError:
                tagged = None
            self.mode = FinalityMode.TAG if tagged is not None else FinalityMode.COUNT
            log.info("finality_mode", chain_id=self.chain_id, mode=self.mode)
            if tagged is not None:
                return tagged
        if self.mode == FinalityMode.TAG:
            # Never fall back to counting when the tag fails: stop completing instead.
            return await fetch_header(self.rpc, "finalized")
        number = head.number - self.confirmations
        return await fetch_header(self.rpc, number) if number >= 0 else None

    async def tip(
        self, snap: CursorSnapshot
    ) -> tuple[BlockHeader, BlockHeader | None, BlockHeader | None]:
        """Head, finalized block and our cursor's block, answered by one node in one request."""
        if self.mode != FinalityMode.TAG:
            head = await fetch_header(self.rpc, "latest")
            if head is None:
                raise RpcError(-1, "node returned no latest block")
            final = await self.final_header(head)
            current = await fetch_header(self.rpc, snap.cursor_number) if snap.exists else None
            return head, final, current
        calls: list[tuple[str, list[object]]] = [
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_getBlockByNumber", ["finalized", False]),
        ]
        if snap.exists:
            calls.append(("eth_getBlockByNumber", [hex(snap.cursor_number), False]))
        answers = await self.rpc.batch_one_request(calls)
        if not answers[0]:
            raise RpcError(-1, "node returned no latest block")
        head = parse_header(answers[0])
        final = parse_header(answers[1]) if answers[1] else None
        current = parse_header(answers[2]) if snap.exists and answers[2] else None
        return head, final, current

    async def time_of(
        self, number: int, headers: dict[int, BlockHeader], final_header: BlockHeader | None
    ) -> int | None:
        """The time of block ``number`` (the chain's clock for expiry), read only when the
        step has not seen its header already."""
        if number <= 0:
            return None
        if number in headers:
            return headers[number].time_ms
        if final_header is not None and final_header.number == number:
            return final_header.time_ms
        header = await fetch_header(self.rpc, number)
        return header.time_ms if header else None

    def check_stall(self, snap: CursorSnapshot, final_number: int, head: BlockHeader) -> None:
        """Alert once when the finalized tag stops moving for ``stall_alert_ms``."""
        if self.mode != FinalityMode.TAG:
            return
        stalled_for = self.clock.now_ms() - snap.final_advanced_at_ms
        stalled = final_number <= snap.final_number and stalled_for > self.stall_alert_ms
        if stalled and not self.stalled:
            log.error(
                "operator_alert",
                alert="finalized tag stalled: orders stop completing until it moves",
                chain_id=self.chain_id,
                final=final_number,
                head=head.number,
                stalled_ms=stalled_for,
            )
        self.stalled = stalled
