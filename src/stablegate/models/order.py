"""Payment orders. Amounts in base units; the deposit address is unique per chain."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import BaseUnits, StrEnumColumn
from stablegate.models.merchant import DepositStrategy


class OrderStatus(StrEnum):
    """The order's states; their transitions are the table in orders/state.py."""

    PENDING = "pending"
    CONFIRMING = "confirming"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class OrderException(StrEnum):
    UNDERPAID = "underpaid"
    OVERPAID = "overpaid"
    PAID_LATE = "paid_late"
    MANUAL = "manual"
    REVERSED_AFTER_COMPLETION = "reversed_after_completion"
    # Another registry token reached the deposit address: kept apart, never credited.
    WRONG_TOKEN = "wrong_token"


class NotifyFormat(StrEnum):
    """How an order's notifications are sent: the gateway's signed webhooks, or the callback of
    the foreign format the order was created in (stablegate.compat.epay, .greenfield)."""

    SIGNED = "signed"
    EPUSDT = "epusdt"  # one POST of JSON when paid, MD5-signed, answered "ok"
    EPAY = "epay"  # one GET with the query when paid, MD5-signed, answered "success"
    # BTCPay's webhook events, to the store's Greenfield webhook, signed BTCPay-Sig
    GREENFIELD = "greenfield"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("merchant_id", "order_no"),
        # Not unique: unique_amount orders all pay to the merchant's payout address.
        Index("ix_orders_chain_to", "chain_id", "to_address"),
        # The watcher's refresh of its watched set: orders of a chain since a time.
        Index("ix_orders_chain_created", "chain_id", "create_time_ms"),
        # The same refresh for orders moved onto a chain after their creation (a payment method
        # chosen in the cashier); partial, so the many orders never moved cost nothing.
        Index(
            "ix_orders_chain_repointed",
            "chain_id",
            "repoint_time_ms",
            postgresql_where=text("repoint_time_ms IS NOT NULL"),
            sqlite_where=text("repoint_time_ms IS NOT NULL"),
        ),
        Index("ix_orders_merchant_created", "merchant_id", "create_time_ms", "id"),
        Index("ix_orders_status_expire", "status", "expire_time_ms"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    order_no: Mapped[str] = mapped_column(String(64))
    cust_no: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the creating request's fields: a repeat with other fields is a conflict.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(20))
    token_address: Mapped[str] = mapped_column(String(42))
    decimals: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BaseUnits)
    paid_amount: Mapped[int] = mapped_column(BaseUnits, default=0)
    pending_amount: Mapped[int] = mapped_column(BaseUnits, default=0)
    status: Mapped[OrderStatus] = mapped_column(StrEnumColumn(OrderStatus, 16))
    exceptions: Mapped[list[str]] = mapped_column(JSON, default=list)
    deposit_strategy: Mapped[DepositStrategy] = mapped_column(StrEnumColumn(DepositStrategy, 20))
    to_address: Mapped[str] = mapped_column(String(42))
    payout_address: Mapped[str] = mapped_column(String(42))
    factory: Mapped[str | None] = mapped_column(String(42))
    deposit_salt: Mapped[str | None] = mapped_column(String(66))
    notify_url: Mapped[str | None] = mapped_column(Text)
    redirect_url: Mapped[str | None] = mapped_column(Text)
    notify_format: Mapped[NotifyFormat] = mapped_column(
        StrEnumColumn(NotifyFormat, 16), default=NotifyFormat.SIGNED, server_default="signed"
    )
    # The compatibility credential that created the order (its key signs the callbacks); NULL
    # for orders of the signed API. Keys are revoked, never deleted.
    compat_key_id: Mapped[str | None] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(String(256))
    metadata_json: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    tx_id: Mapped[str | None] = mapped_column(String(66))
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    event_sequence: Mapped[int] = mapped_column(Integer, default=0)
    expire_time_ms: Mapped[int] = mapped_column(BigInteger)
    create_time_ms: Mapped[int] = mapped_column(BigInteger)
    complete_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    # When the order was moved onto its chain and token after its creation (the customer chose
    # among several payment methods); null for the orders created where they are paid.
    repoint_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    # Priced in a fiat currency (all null otherwise): the merchant's amount and the rate locked
    # at creation, fiat per token, with where it came from and the time of its oldest input.
    fiat_amount: Mapped[str | None] = mapped_column(String(48))
    fiat_currency: Mapped[str | None] = mapped_column(String(3))
    rate: Mapped[str | None] = mapped_column(String(48))
    rate_source: Mapped[str | None] = mapped_column(String(200))
    rate_time_ms: Mapped[int | None] = mapped_column(BigInteger)
