"""The ``epay`` credential: what EPay and Epusdt plugins authenticate with.

A plugin is configured with a merchant id (EPay's ``pid``) and a key. The pid is the key row's
own id, ten digits (EPay pids are integers, and panels such as SSPanel, dujiaoka and v2board
store and send them as such); the key is 32 letters and digits, shown once and stored encrypted
like the signed keys' secrets, because MD5 signing needs the key itself, not a hash of it. The
row's ``key_hash`` is the SHA-256 of the pid, which is not secret: the signed API finds no
``epay`` row whatever is sent (stablegate.merchants.credentials), which a test holds.

The credential also fixes what the foreign formats do not say: the chain and token the orders
are paid in and the fiat currency their amounts are in (CNY unless told otherwise).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.compat.payout_chains import credential_payment
from stablegate.merchants.api_keys import checked_label
from stablegate.merchants.service import hash_api_key
from stablegate.models import ApiKey, AuditEntry, Merchant
from stablegate.models.api_key import CredentialKind
from stablegate.models.merchant import MerchantStatus
from stablegate.secret_box import SecretBox

PID_DIGITS = 10
KEY_LENGTH = 32
_KEY_ALPHABET = string.ascii_letters + string.digits
DEFAULT_CURRENCY = "CNY"
DEFAULT_SYMBOL = "USDT"


@dataclass(frozen=True)
class EpayCredential:
    """A loaded, active ``epay`` credential."""

    pid: str
    merchant_id: str
    key: str = field(repr=False)
    chain_id: int
    symbol: str
    currency: str


def new_pid() -> str:
    """Ten random digits, the first not 0 (a pid is read as an integer by some plugins)."""
    return str(10 ** (PID_DIGITS - 1) + secrets.randbelow(9 * 10 ** (PID_DIGITS - 1)))


def new_key() -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(KEY_LENGTH))


def is_pid(value: str) -> bool:
    return len(value) == PID_DIGITS and value.isascii() and value.isdigit()


async def issue_epay_credential(
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
) -> EpayCredential:
    """A new ``epay`` credential for the merchant (audited), with its key, which is shown this
    once. Its orders are paid in ``symbol`` on the chain (by default the
    merchant's only payout chain) and priced in ``currency``."""
    chain, token = await credential_payment(
        session,
        registry,
        merchant_id=merchant_id,
        chain_id=chain_id,
        symbol=symbol,
        currency=currency,
        priced="orders",
    )
    pid = new_pid()
    while await session.get(ApiKey, pid) is not None:  # 9e9 pids: a clash is all but impossible
        pid = new_pid()
    key = new_key()
    now = clock.now_ms()
    session.add(
        ApiKey(
            id=pid,
            merchant_id=merchant_id,
            key_hash=hash_api_key(pid),
            key_prefix=pid,
            label=checked_label(label),
            secret_enc=box.seal(key),
            v2_enabled=False,
            signed_reads=None,
            created_at_ms=now,
            kind=CredentialKind.EPAY,
            compat_chain_id=chain.id,
            compat_symbol=token.symbol,
            compat_currency=currency,
        )
    )
    session.add(
        AuditEntry(
            at_ms=now,
            actor=actor,
            action="api_key.created",
            subject=merchant_id,
            details={"kind": CredentialKind.EPAY.value, "pid": pid, "chainId": chain.id},
        )
    )
    await session.flush()
    return EpayCredential(pid, merchant_id, key, chain.id, token.symbol, currency)


async def load_epay_credential(
    session: AsyncSession, box: SecretBox, pid: str
) -> EpayCredential | None:
    """The active ``epay`` credential with this pid, or None (unknown, revoked, another kind,
    or its merchant is not active: a disabled merchant's credentials stop at the next request)."""
    if not is_pid(pid):
        return None
    row = await session.scalar(
        select(ApiKey)
        .join(Merchant, Merchant.id == ApiKey.merchant_id)
        .where(
            ApiKey.id == pid,
            ApiKey.kind == CredentialKind.EPAY,
            ApiKey.revoked_at_ms.is_(None),
            Merchant.status == MerchantStatus.ACTIVE,
        )
    )
    if row is None or row.compat_chain_id is None or row.compat_symbol is None:
        return None
    return EpayCredential(
        pid=row.id,
        merchant_id=row.merchant_id,
        key=box.open(row.secret_enc),
        chain_id=row.compat_chain_id,
        symbol=row.compat_symbol,
        currency=row.compat_currency or DEFAULT_CURRENCY,
    )
