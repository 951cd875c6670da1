"""The watcher's durable cursor: the last processed block, the final height and the stored
block hashes of one chain (``chain_state`` and ``chain_blocks``).

Every move of the cursor is fenced twice: by the lease epoch, and by the cursor the step read
at its start. A write finding either changed raises :class:`Fenced` and rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.evm.blocks import BlockHeader
from stablegate.clock import Clock
from stablegate.db.engine import read_scope
from stablegate.leases import Fenced, LeaseGrant, hold
from stablegate.models import ChainBlock, ChainState
from stablegate.models.chain_state import FinalityMode


@dataclass
class CursorSnapshot:
    """What a step read of the cursor before going to the chain."""

    exists: bool
    cursor_number: int
    cursor_hash: str
    final_number: int
    final_hash: str | None
    final_advanced_at_ms: int
    final_block_time_ms: int
    stored: dict[int, str] = field(default_factory=dict)  # block number -> hash

    @classmethod
    def missing(cls) -> CursorSnapshot:
        """No watcher has started on this chain yet."""
        return cls(
            exists=False,
            cursor_number=-1,
            cursor_hash="",
            final_number=0,
            final_hash=None,
            final_advanced_at_ms=0,
            final_block_time_ms=0,
        )


class ChainCursor:
    def __init__(
        self, chain_id: int, sessions: async_sessionmaker[AsyncSession], clock: Clock
    ) -> None:
        self.chain_id = chain_id
        self.sessions = sessions
        self.clock = clock

    async def read(self) -> CursorSnapshot:
        async with read_scope(self.sessions) as session:
            state = await session.get(ChainState, self.chain_id)
            if state is None:
                return CursorSnapshot.missing()
            rows = await session.execute(
                select(ChainBlock.number, ChainBlock.hash).where(
                    ChainBlock.chain_id == self.chain_id
                )
            )
            return CursorSnapshot(
                exists=True,
                cursor_number=state.cursor_number,
                cursor_hash=state.cursor_hash,
                final_number=state.final_number,
                final_hash=state.final_hash,
                final_advanced_at_ms=state.final_advanced_at_ms,
                final_block_time_ms=state.final_block_time_ms,
                stored={number: block_hash for number, block_hash in rows.all()},
            )

    async def start(
        self,
        session: AsyncSession,
        grant: LeaseGrant,
        *,
        start: BlockHeader,
        head: BlockHeader,
        final_number: int,
        finality_mode: FinalityMode | None,
    ) -> None:
        """The first cursor on this chain, at ``start``."""
        await hold(session, grant)
        if await session.get(ChainState, self.chain_id) is not None:
            raise Fenced("chain state created by another watcher")
        now = self.clock.now_ms()
        session.add(
            ChainState(
                chain_id=self.chain_id,
                epoch=grant.epoch,
                cursor_number=start.number,
                cursor_hash=start.hash,
                final_number=min(final_number, start.number),
                final_hash=None,
                final_block_time_ms=0,
                head_number=head.number,
                head_seen_at_ms=now,
                finality_mode=finality_mode or FinalityMode.TAG,
                final_advanced_at_ms=now,
                reconcile_mismatches=0,
                reconciled_at_ms=0,
                updated_at_ms=now,
            )
        )
        session.add(
            ChainBlock(
                chain_id=self.chain_id,
                number=start.number,
                hash=start.hash,
                parent_hash=start.parent_hash,
                time_ms=start.time_ms,
            )
        )

    async def move(
        self,
        session: AsyncSession,
        grant: LeaseGrant,
        snap: CursorSnapshot,
        *,
        cursor: BlockHeader,
        head: BlockHeader,
        final_number: int,
        final_time_ms: int | None,
        finality_mode: FinalityMode | None,
    ) -> None:
        """Move the cursor from where ``snap`` saw it to ``cursor`` (forward, or back after a
        reorg); :class:`Fenced` when the lease or the cursor changed since."""
        await hold(session, grant)
        now = self.clock.now_ms()
        values: dict[str, object] = {
            "epoch": grant.epoch,
            "cursor_number": cursor.number,
            "cursor_hash": cursor.hash,
            "head_number": head.number,
            "head_seen_at_ms": now,
            "finality_mode": finality_mode or FinalityMode.TAG,
            "updated_at_ms": now,
        }
        if final_number > snap.final_number:
            values["final_number"] = final_number
            values["final_advanced_at_ms"] = now
        if final_time_ms is not None:
            values["final_block_time_ms"] = final_time_ms
        result = await session.execute(
            update(ChainState)
            .where(
                ChainState.chain_id == self.chain_id,
                ChainState.epoch <= grant.epoch,
                ChainState.cursor_number == snap.cursor_number,
                ChainState.cursor_hash == snap.cursor_hash,
            )
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Fenced("the cursor moved underneath us")
