"""Sweeper bookkeeping: what to flush per order, and every transaction signed for it."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import BaseUnits, StrEnumColumn


class SweepItemStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    RETRY = "retry"
    STUCK = "stuck"


class SweepTxStatus(StrEnum):
    SIGNED = "signed"
    BROADCAST = "broadcast"
    MINED = "mined"
    FAILED = "failed"
    REPLACED = "replaced"


class SweepItem(Base):
    """One (deposit address, token) to flush to its payout address."""

    __tablename__ = "sweep_items"
    __table_args__ = (
        UniqueConstraint("chain_id", "deposit_address", "token_address"),
        Index("ix_sweep_items_chain_status", "chain_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    deposit_address: Mapped[str] = mapped_column(String(42))
    payout_address: Mapped[str] = mapped_column(String(42))
    deposit_salt: Mapped[str] = mapped_column(String(66))
    token_address: Mapped[str] = mapped_column(String(42))
    status: Mapped[SweepItemStatus] = mapped_column(StrEnumColumn(SweepItemStatus, 12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    swept_amount: Mapped[int] = mapped_column(BaseUnits, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sweep_tx_id: Mapped[int | None] = mapped_column(ForeignKey("sweep_txs.id"))
    next_attempt_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class SweepTx(Base):
    """A signed deployAndFlush transaction, stored before it is broadcast."""

    __tablename__ = "sweep_txs"
    __table_args__ = (Index("ix_sweep_txs_chain_status", "chain_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    raw_tx: Mapped[str] = mapped_column(Text)
    max_fee_per_gas: Mapped[int] = mapped_column(BaseUnits)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(BaseUnits)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[SweepTxStatus] = mapped_column(StrEnumColumn(SweepTxStatus, 12))
    # Hashes of earlier fee bumps of the same nonce: any of them may be the one that mines.
    replaced_hashes: Mapped[str] = mapped_column(Text, default="")
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    fee_paid: Mapped[int | None] = mapped_column(BaseUnits)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
