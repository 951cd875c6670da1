"""Gateway-wide settings the operator changes at run time from the console (the sign-up
policy): a row overrides the environment's value until deleted."""

from __future__ import annotations

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base


class GatewaySetting(Base):
    __tablename__ = "gateway_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(200))
