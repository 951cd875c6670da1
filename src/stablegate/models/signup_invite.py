"""Invite codes the operator creates for the ``invite`` sign-up policy: stored as hashes,
expiring, single use."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base


class SignupInvite(Base):
    __tablename__ = "signup_invites"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # SHA-256 of the code: the code is printed once and never stored.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    used_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The merchant it created (no foreign key: the invite's record outlives a deleted merchant).
    used_by_merchant_id: Mapped[str | None] = mapped_column(String(40))
