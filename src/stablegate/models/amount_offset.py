"""Reserved amounts of the `unique_amount` strategy: one open order per exact amount."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import BaseUnits


class AmountOffset(Base):
    """While reserved, a transfer of exactly ``amount`` of ``token`` to ``address`` belongs to
    ``order_id``. A reservation is never reused before ``reserved_until_ms`` (30 days)."""

    __tablename__ = "amount_offsets"
    __table_args__ = (UniqueConstraint("chain_id", "token_address", "address", "amount"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    token_address: Mapped[str] = mapped_column(String(42))
    address: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(BaseUnits)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    reserved_until_ms: Mapped[int] = mapped_column(BigInteger)
