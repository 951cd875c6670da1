"""Links mailed to dashboard users (email verification): expiring and single use.

The link itself is this row's id plus an HMAC over the row's fields, so the table alone gives
nobody a working link, and the operator's CLI can rebuild a pending one without SMTP.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import StrEnumColumn


class LinkPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class EmailLink(Base):
    __tablename__ = "email_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("dashboard_users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[LinkPurpose] = mapped_column(StrEnumColumn(LinkPurpose, 20))
    # The address the link was sent to: a link for an address the user since changed is void.
    email: Mapped[str] = mapped_column(String(254))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    used_at_ms: Mapped[int | None] = mapped_column(BigInteger)
