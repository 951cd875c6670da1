"""People who log in to the merchant dashboard: each belongs to one merchant."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import StrEnumColumn


class UserRole(StrEnum):
    OWNER = "owner"  # signed the merchant up


class DashboardUser(Base):
    __tablename__ = "dashboard_users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    # Lower-cased, so one address is one account.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # Argon2id, in the PHC string format (parameters included).
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[UserRole] = mapped_column(StrEnumColumn(UserRole, 16), default=UserRole.OWNER)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    email_verified_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_login_at_ms: Mapped[int | None] = mapped_column(BigInteger)
