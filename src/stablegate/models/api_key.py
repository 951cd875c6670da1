"""API keys (stored as hashes) and the ECDSA public keys registered for them.

A row is one credential of a merchant, of one :class:`CredentialKind`: the signed API's
``ak_…``/``sk_…`` pair, or a compatibility credential that only the foreign-format endpoints
accept (docs/INTEGRATIONS.md): ``epay`` (a numeric pid, which is the row's id, and an MD5 key) or
``greenfield`` (a BTCPay-style API token, stored as a hash like the signed keys).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stablegate.db.base import Base
from stablegate.db.types import StrEnumColumn


class CredentialKind(StrEnum):
    """What a credential authenticates: each kind is accepted by its own endpoints only."""

    SIGNED = "signed"  # the merchant API (docs/DESIGN.md §2)
    EPAY = "epay"  # the EPay / Epusdt endpoints, MD5-signed (stablegate.compat.epay)
    GREENFIELD = "greenfield"  # BTCPay's Greenfield API subset (stablegate.compat.greenfield)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the full key: the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    # The merchant's own name for the key (set in the dashboard), shown as text only.
    label: Mapped[str | None] = mapped_column(String(80))
    # The HMAC (V2) secret, encrypted with STABLEGATE_SECRET_KEY.
    secret_enc: Mapped[str] = mapped_column(Text)
    # Once a public key is registered V2 is refused unless the merchant opts back in.
    v2_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Reads need a signature: set by the operator, or NULL for the default (required once a
    # public key is registered; stablegate.auth.verify.signed_reads_required).
    signed_reads: Mapped[bool | None] = mapped_column(Boolean, default=None)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # When a request last authenticated with the key; written at most once a minute, so the
    # hot path does not write a row per request.
    last_used_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The addresses and networks (CIDR) the key may be used from, comma-separated; NULL: any.
    ip_allowlist: Mapped[str | None] = mapped_column(Text)
    # Which endpoints accept the credential; the signed API only ``signed`` ones.
    kind: Mapped[CredentialKind] = mapped_column(
        StrEnumColumn(CredentialKind, 16),
        default=CredentialKind.SIGNED,
        server_default="signed",
    )
    # A compatibility credential's orders: the chain and token they are paid in and the fiat
    # currency their amounts are in (the foreign formats name none of these). NULL on signed keys.
    compat_chain_id: Mapped[int | None] = mapped_column(Integer)
    compat_symbol: Mapped[str | None] = mapped_column(String(20))
    compat_currency: Mapped[str | None] = mapped_column(String(3))
    # A greenfield credential's permissions as BTCPay names them (``btcpay.store.…:<storeId>``),
    # space-separated; NULL on other kinds.
    compat_permissions: Mapped[str | None] = mapped_column(Text)


class ApiPublicKey(Base):
    __tablename__ = "api_public_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    pem: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
