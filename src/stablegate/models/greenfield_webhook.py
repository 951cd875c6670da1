"""A store's Greenfield (BTCPay) webhook: where the events of the invoices made through the
Greenfield API go, signed ``BTCPay-Sig`` with its secret (stablegate.compat.greenfield).

One enabled webhook per merchant (store): creating another disables the previous one. ``events``
null or empty is every event (BTCPay's ``authorizedEvents.everything``), else the Greenfield event
types subscribed to.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base


class GreenfieldWebhook(Base):
    __tablename__ = "greenfield_webhooks"
    __table_args__ = (Index("ix_greenfield_webhooks_merchant", "merchant_id", "enabled"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    # The HMAC secret, sealed with STABLEGATE_SECRET_KEY (shown once, when the webhook is made).
    secret_enc: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
