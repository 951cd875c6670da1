"""Leadership leases: one active watcher or sweeper per chain, fenced by an epoch."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base


class Lease(Base):
    __tablename__ = "leases"

    # e.g. "watcher:1", "sweeper:56"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    # Bumped on every change of holder; every write of the holder checks it.
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
