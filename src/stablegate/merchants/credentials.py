"""Look up what an API key may sign with, for the authentication step.

Only ``signed`` credentials exist for the signed API: a compatibility credential (EPay's pid and
MD5 key) is answered exactly like an unknown key, whatever is sent in its place, so a key made
for an MD5-speaking plugin can never read or write through the signed API. API processes keep
what this loads in :mod:`stablegate.merchants.credential_cache`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.auth.ip_allowlist import load_ip_allowlist
from stablegate.auth.signatures import load_public_key_pem
from stablegate.auth.verify import KeyCredentials
from stablegate.merchants.terms import MerchantTerms, load_terms
from stablegate.models import ApiKey, ApiPublicKey, Merchant
from stablegate.models.api_key import CredentialKind
from stablegate.models.merchant import MerchantStatus
from stablegate.secret_box import SecretBox


@dataclass(frozen=True)
class KnownKey:
    """A signed-API key that authenticated: what it may sign with and its merchant's terms."""

    credentials: KeyCredentials
    terms: MerchantTerms


async def load_known_key(session: AsyncSession, box: SecretBox, key_hash: str) -> KnownKey | None:
    """Read on a cache miss: the signed-API key by its hash, if it may be used now."""
    key = await session.scalar(
        select(ApiKey)
        .join(Merchant, Merchant.id == ApiKey.merchant_id)
        .where(
            ApiKey.key_hash == key_hash,
            ApiKey.revoked_at_ms.is_(None),
            Merchant.status == MerchantStatus.ACTIVE,
            ApiKey.kind == CredentialKind.SIGNED,
        )
    )
    if key is None:
        return None
    pems = (
        await session.scalars(select(ApiPublicKey.pem).where(ApiPublicKey.api_key_id == key.id))
    ).all()
    terms = await load_terms(session, key.merchant_id)
    if terms is None:
        return None
    credentials = KeyCredentials(
        api_key_id=key.id,
        merchant_id=key.merchant_id,
        hmac_secret=box.open(key.secret_enc).encode(),
        public_keys=tuple(load_public_key_pem(pem) for pem in pems),
        v2_enabled=key.v2_enabled,
        signed_reads=key.signed_reads,
        ip_allowlist=load_ip_allowlist(key.ip_allowlist),
    )
    return KnownKey(credentials, terms)
