"""The gateway operator's console accounts (``/admin/``): made only by ``stablegate admin
create``, never signed up; no merchant. Sessions and the second factor follow the dashboard's
rules, in tables of their own so a merchant's session can never open the console."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base


class OperatorAccount(Base):
    __tablename__ = "operator_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower-cased
    password_hash: Mapped[str] = mapped_column(String(200))  # Argon2id, PHC string
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    last_login_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    disabled_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # As on DashboardUser.
    totp_secret_enc: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    recovery_hashes: Mapped[str | None] = mapped_column(Text)


class OperatorSession(Base):
    __tablename__ = "operator_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the cookie
    operator_id: Mapped[str] = mapped_column(
        ForeignKey("operator_accounts.id", ondelete="CASCADE"), index=True
    )
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    last_seen_at_ms: Mapped[int] = mapped_column(BigInteger)
    user_agent: Mapped[str] = mapped_column(String(300))
    ip: Mapped[str] = mapped_column(String(45))
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
