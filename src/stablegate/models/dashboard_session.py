"""Dashboard log-in sessions: the cookie holds a random token, the table only its hash."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base


class DashboardSession(Base):
    __tablename__ = "dashboard_sessions"

    # The public id, shown on the Security page and used to revoke; not the cookie's token.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # SHA-256 of the cookie's token: a copy of this table logs nobody in.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("dashboard_users.id", ondelete="CASCADE"), index=True
    )
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    last_seen_at_ms: Mapped[int] = mapped_column(BigInteger)
    user_agent: Mapped[str] = mapped_column(String(300))
    ip: Mapped[str] = mapped_column(String(45))
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # Password accepted, TOTP code not yet: such a session opens no page but the second step.
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
