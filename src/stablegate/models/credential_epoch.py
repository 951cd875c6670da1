"""One number that changes whenever any API key's credentials may have changed.

API processes keep decrypted credentials in memory (:mod:`stablegate.merchants.credential_cache`)
and compare this number in the transaction of every request. Database triggers (migration 0014)
add one to it in the same transaction as any change that could alter what a key may do: a key
revoked, its secret or policy changed, a public key added or removed, its merchant disabled or
its deposit terms or payout addresses changed. Code cannot forget to bump it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base

# The table's only row.
EPOCH_ROW_ID = 1


class CredentialEpoch(Base):
    __tablename__ = "credential_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(BigInteger)
