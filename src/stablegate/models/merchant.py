"""Merchants and their payout address per chain."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import StrEnumColumn


class LatePaymentPolicy(StrEnum):
    RECORD = "record"  # a late payment only adds paid_late
    COMPLETE = "complete"  # a late payment can complete an expired order


class MerchantStatus(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # signed up under the approval policy, awaiting the operator
    DISABLED = "disabled"  # by the operator: its keys and dashboard log-ins are refused at once


class DepositStrategy(StrEnum):
    FORWARDER = "forwarder"  # a deposit contract per order, flushed by the sweeper
    UNIQUE_AMOUNT = "unique_amount"  # the payout wallet itself, told apart by the amount


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    notify_url: Mapped[str | None] = mapped_column(Text)
    # Webhook secret (encrypted); the previous one stays valid until prev_until_ms after rotation.
    webhook_secret_enc: Mapped[str] = mapped_column(Text)
    webhook_secret_prev_enc: Mapped[str | None] = mapped_column(Text)
    webhook_secret_prev_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    late_payment: Mapped[LatePaymentPolicy] = mapped_column(
        StrEnumColumn(LatePaymentPolicy, 16), default=LatePaymentPolicy.RECORD
    )
    # Underpayment tolerance in parts per million of the amount (0 = exact).
    underpay_tolerance_ppm: Mapped[int] = mapped_column(Integer, default=0)
    deposit_strategy: Mapped[DepositStrategy] = mapped_column(
        StrEnumColumn(DepositStrategy, 20), default=DepositStrategy.FORWARDER
    )
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # Merchants made by the operator are active; a dashboard sign-up under the approval policy
    # is pending until ``stablegate merchant approve``, and cannot log in meanwhile.
    status: Mapped[MerchantStatus] = mapped_column(
        StrEnumColumn(MerchantStatus, 16), default=MerchantStatus.ACTIVE, server_default="active"
    )
    # What the cashier shows the paying customer (merchants/branding.py bounds them); the
    # display name falls back to ``name``.
    display_name: Mapped[str | None] = mapped_column(String(80))
    logo_url: Mapped[str | None] = mapped_column(String(512))
    support_contact: Mapped[str | None] = mapped_column(String(200))


class PayoutAddress(Base):
    __tablename__ = "payout_addresses"

    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
