"""On-chain transfers to deposit addresses, and flushes out of them to their payout address
(kind ``flush``, for reconciliation), one row per transfer identity.

Identity is (chain_id, tx_hash, log_position): the position of the Transfer log within its
transaction's receipt, which survives re-inclusion in another block after a reorg (the block
hash, number and block-level log index do not). A re-included transfer revives its row.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import BaseUnits, StrEnumColumn


class PaymentStatus(StrEnum):
    SEEN = "seen"
    FINAL = "final"
    ORPHANED = "orphaned"


class PaymentKind(StrEnum):
    CREDIT = "credit"  # the order's token, at least min_credit: counts towards the order
    BELOW_MIN = "below_min"
    WRONG_TOKEN = "wrong_token"  # another token of the registry
    UNSUPPORTED_TOKEN = "unsupported_token"  # a token outside the registry
    # On a chain the order has left (the customer chose another payment method): never credited
    WRONG_CHAIN = "wrong_chain"
    NATIVE = "native"
    UNATTRIBUTED = "unattributed"
    IGNORED = "ignored"
    FLUSH = "flush"  # out of the deposit to its payout: never a payment


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_position"),
        Index("ix_payments_chain_status_block", "chain_id", "status", "block_number"),
        Index("ix_payments_order", "order_id"),
        Index("ix_payments_chain_to", "chain_id", "to_address"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_position: Mapped[int] = mapped_column(Integer)
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_time_ms: Mapped[int] = mapped_column(BigInteger)
    # Token contract, or the zero address for the native coin.
    token_address: Mapped[str] = mapped_column(String(42))
    from_address: Mapped[str] = mapped_column(String(42))
    to_address: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(BaseUnits)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    status: Mapped[PaymentStatus] = mapped_column(StrEnumColumn(PaymentStatus, 12))
    kind: Mapped[PaymentKind] = mapped_column(StrEnumColumn(PaymentKind, 20))
    # Block time after the order's expireTime.
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set once the amount counted towards the order's paid total (final and credited).
    credited: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
