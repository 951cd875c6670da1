"""The ``greenfield`` credential: what a Greenfield client authenticates with.

The client sends ``Authorization: token <key>``. The key is 40 characters of ``[A-Za-z0-9_-]``,
shown once and stored as its SHA-256 like the signed API's keys (nothing is signed with it, so
the key itself is never needed again); the signed API finds no ``greenfield`` row whatever is
sent (stablegate.merchants.credentials). A credential belongs to one merchant, which is one
Greenfield store: the store's id is the merchant's id (stable, and free of ``:``, which
separates a permission from its store). Its permissions are BTCPay's store-scoped names
(``btcpay.store.canviewinvoices:<storeId>``), exactly the set the WooCommerce plugin asks for
and checks for equality.

It also fixes what a request may leave out: the chain and token of an invoice that names no
payment method, and the store's default currency (an invoice without ``currency``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.compat.payout_chains import credential_payment
from stablegate.errors import InvalidRequest
from stablegate.merchants.api_keys import checked_label
from stablegate.merchants.service import hash_api_key
from stablegate.models import ApiKey, AuditEntry, Merchant
from stablegate.models.api_key import CredentialKind
from stablegate.models.merchant import MerchantStatus
from stablegate.secret_box import SecretBox, new_token

DEFAULT_CURRENCY = "USD"
DEFAULT_SYMBOL = "USDT"
KEY_BYTES = 30  # 40 URL-safe characters
_KEY = re.compile(r"[A-Za-z0-9_-]{20,128}")

CAN_VIEW_INVOICES = "btcpay.store.canviewinvoices"
CAN_CREATE_INVOICE = "btcpay.store.cancreateinvoice"
CAN_MODIFY_INVOICES = "btcpay.store.canmodifyinvoices"
CAN_MODIFY_WEBHOOKS = "btcpay.store.webhooks.canmodifywebhooks"
CAN_VIEW_STORE_SETTINGS = "btcpay.store.canviewstoresettings"
# What the WooCommerce plugin requests, in its order; it refuses a key with more or fewer.
STORE_PERMISSIONS: tuple[str, ...] = (
    CAN_VIEW_INVOICES,
    CAN_CREATE_INVOICE,
    CAN_MODIFY_WEBHOOKS,
    CAN_VIEW_STORE_SETTINGS,
    CAN_MODIFY_INVOICES,
)


@dataclass(frozen=True)
class GreenfieldCredential:
    """A loaded, active ``greenfield`` credential (without its key, which is not stored)."""

    key_id: str
    merchant_id: str
    label: str | None
    permissions: tuple[str, ...]
    chain_id: int
    symbol: str
    currency: str  # the store's default currency

    @property
    def store_id(self) -> str:
        return store_id_of(self.merchant_id)

    def allows(self, permission: str, store_id: str) -> bool:
        return f"{permission}:{store_id}" in self.permissions


@dataclass(frozen=True)
class IssuedCredential:
    credential: GreenfieldCredential
    key: str = field(repr=False)


def store_id_of(merchant_id: str) -> str:
    """The Greenfield store id of a merchant: its own id."""
    return merchant_id


def is_key(value: str) -> bool:
    return _KEY.fullmatch(value) is not None


async def issue_greenfield_credential(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    registry: ChainRegistry,
    *,
    merchant_id: str,
    chain_id: int | None = None,
    symbol: str = DEFAULT_SYMBOL,
    currency: str = DEFAULT_CURRENCY,
    label: str = "",
    actor: str = "cli",
    permissions: Sequence[str] = STORE_PERMISSIONS,
) -> IssuedCredential:
    """A new ``greenfield`` credential for the merchant (audited), with its key, shown this
    once. Invoices naming no payment method are paid in ``symbol`` on the chain (by default
    the merchant's only payout chain); ``currency`` is the store's default currency."""
    chain, token = await credential_payment(
        session,
        registry,
        merchant_id=merchant_id,
        chain_id=chain_id,
        symbol=symbol,
        currency=currency,
        priced="invoices",
    )
    key = secrets.token_urlsafe(KEY_BYTES)
    key_id = new_token("gfk_", 12)
    unknown = set(permissions) - set(STORE_PERMISSIONS)
    if unknown or not permissions:
        raise InvalidRequest(
            f"permissions are some of {', '.join(STORE_PERMISSIONS)}", code="invalid_request"
        )
    scoped = tuple(
        f"{name}:{store_id_of(merchant_id)}" for name in STORE_PERMISSIONS if name in permissions
    )
    now = clock.now_ms()
    session.add(
        ApiKey(
            id=key_id,
            merchant_id=merchant_id,
            key_hash=hash_api_key(key),
            key_prefix=key[:8],
            label=checked_label(label),
            # Nothing is signed with a greenfield key: the column holds an empty secret.
            secret_enc=box.seal(""),
            v2_enabled=False,
            signed_reads=None,
            created_at_ms=now,
            kind=CredentialKind.GREENFIELD,
            compat_chain_id=chain.id,
            compat_symbol=token.symbol,
            compat_currency=currency,
            compat_permissions=" ".join(scoped),
        )
    )
    session.add(
        AuditEntry(
            at_ms=now,
            actor=actor,
            action="api_key.created",
            subject=merchant_id,
            details={
                "kind": CredentialKind.GREENFIELD.value,
                "keyId": key_id,
                "chainId": chain.id,
            },
        )
    )
    await session.flush()
    credential = GreenfieldCredential(
        key_id, merchant_id, checked_label(label), scoped, chain.id, token.symbol, currency
    )
    return IssuedCredential(credential, key)


async def load_greenfield_credential(
    session: AsyncSession, key: str
) -> GreenfieldCredential | None:
    """The active ``greenfield`` credential with this key, or None (malformed, unknown,
    revoked, another kind, or its merchant is not active: a disabled merchant's credentials
    stop at the next request)."""
    if not is_key(key):
        return None
    row = await session.scalar(
        select(ApiKey)
        .join(Merchant, Merchant.id == ApiKey.merchant_id)
        .where(
            ApiKey.key_hash == hash_api_key(key),
            ApiKey.kind == CredentialKind.GREENFIELD,
            ApiKey.revoked_at_ms.is_(None),
            Merchant.status == MerchantStatus.ACTIVE,
        )
    )
    if row is None or row.compat_chain_id is None or row.compat_symbol is None:
        return None
    return GreenfieldCredential(
        key_id=row.id,
        merchant_id=row.merchant_id,
        label=row.label,
        permissions=tuple((row.compat_permissions or "").split()),
        chain_id=row.compat_chain_id,
        symbol=row.compat_symbol,
        currency=row.compat_currency or DEFAULT_CURRENCY,
    )
