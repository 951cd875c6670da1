"""Replay-cache entries when the database is the shared store (no Redis)."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base


class ReplayKey(Base):
    __tablename__ = "replay_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
