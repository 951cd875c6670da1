"""Outbox: one row per order event, written in the transaction of the state change."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import StrEnumColumn


class EventStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    NO_ENDPOINT = "no_endpoint"


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("order_id", "sequence"),
        # The claim's only index: the few rows the ordering rule lets go, by due time.
        # (SQLite stores booleans as 0/1 and uses a partial index only for the same term.)
        Index(
            "ix_webhook_events_deliverable_due",
            "next_attempt_at_ms",
            "id",
            postgresql_where=text("deliverable"),
            sqlite_where=text("deliverable = 1"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending -> delivered | failed; attempts and schedule live here, not in memory.
    status: Mapped[EventStatus] = mapped_column(
        StrEnumColumn(EventStatus, 16), default=EventStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at_ms: Mapped[int] = mapped_column(BigInteger)
    lease_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # Pending and not held by an earlier event of its order: see webhooks/ordering.py. Every
    # writer sets it (the default only filled the rows that existed before the column).
    deliverable: Mapped[bool] = mapped_column(Boolean, server_default=false())
