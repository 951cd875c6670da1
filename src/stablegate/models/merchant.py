"""Merchants and their payout address per chain."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    notify_url: Mapped[str | None] = mapped_column(Text)
    # Webhook secret (encrypted); the previous one stays valid until prev_until_ms after rotation.
    webhook_secret_enc: Mapped[str] = mapped_column(Text)
    webhook_secret_prev_enc: Mapped[str | None] = mapped_column(Text)
    webhook_secret_prev_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    # "record": a late payment only adds paid_late; "complete": it can complete an expired order.
    late_payment: Mapped[str] = mapped_column(String(16), default="record")
    # Underpayment tolerance in parts per million of the amount (0 = exact).
    underpay_tolerance_ppm: Mapped[int] = mapped_column(Integer, default=0)
    deposit_strategy: Mapped[str] = mapped_column(String(20), default="forwarder")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class PayoutAddress(Base):
    __tablename__ = "payout_addresses"

    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
