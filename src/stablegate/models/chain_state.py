"""Per-chain watcher state: the cursor, finality, and the hashes of unfinalised blocks."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import StrEnumColumn


class FinalityMode(StrEnum):
    TAG = "tag"  # the node's finalized block
    COUNT = "count"  # confirmations, for chains without the tag


class ChainState(Base):
    __tablename__ = "chain_state"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Fencing token: the lease epoch of the watcher allowed to write this row. Taking the
    # lease bumps it in the same transaction, so a paused old leader's writes match 0 rows.
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    # Last block fully processed, and its hash: the next block's parentHash must match.
    cursor_number: Mapped[int] = mapped_column(BigInteger)
    cursor_hash: Mapped[str] = mapped_column(String(66))
    # Highest final block seen (never decreases) and its hash.
    final_number: Mapped[int] = mapped_column(BigInteger, default=0)
    final_hash: Mapped[str | None] = mapped_column(String(66))
    # Time of the highest block that is both final and processed: expiry runs on this clock.
    final_block_time_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    head_number: Mapped[int] = mapped_column(BigInteger, default=0)
    head_seen_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    finality_mode: Mapped[FinalityMode] = mapped_column(
        StrEnumColumn(FinalityMode, 8), default=FinalityMode.TAG
    )
    # When the final height last advanced; a stalled tag raises an alert, never a fallback.
    final_advanced_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # Reconciliation: deposit addresses whose balance differs from what was credited.
    reconcile_mismatches: Mapped[int] = mapped_column(BigInteger, default=0)
    reconciled_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class ChainBlock(Base):
    """Hashes of recent (unfinalised) blocks, for parent checks and reorg walk-back."""

    __tablename__ = "chain_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))
    time_ms: Mapped[int] = mapped_column(BigInteger)
