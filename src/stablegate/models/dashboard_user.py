"""People who log in to the merchant dashboard: each belongs to one merchant."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String, Text
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
    # TOTP second factor (RFC 6238): the secret encrypted with STABLEGATE_SECRET_KEY, set when
    # enrolment starts and in force once ``totp_enabled_at_ms`` is set; the last accepted time
    # step, so one code logs in once.
    totp_secret_enc: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # SHA-256 hashes of the unused recovery codes, space-separated (spent by compare-and-set).
    recovery_hashes: Mapped[str | None] = mapped_column(Text)
