"""A merchant's own API keys, as the dashboard lists, revokes and configures them: every
statement starts from :func:`readable_api_keys`, scoped to the merchant, so another merchant's
key is never found (docs/DESIGN.md §1). The settings reuse the operator CLI's services
(:func:`~stablegate.merchants.service.register_public_key`,
:func:`~stablegate.merchants.service.apply_key_policy`) on the scoped row."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.auth.ip_allowlist import checked_ip_allowlist, stored_ip_allowlist
from stablegate.auth.signatures import load_public_key_pem
from stablegate.auth.verify import signed_reads_required
from stablegate.clock import Clock
from stablegate.errors import InvalidRequest, NotFound
from stablegate.merchants.service import apply_key_policy, issue_api_key, register_public_key
from stablegate.models import ApiKey, ApiPublicKey, AuditEntry
from stablegate.secret_box import SecretBox

MAX_LABEL = 80
MAX_PUBLIC_KEYS = 10


@dataclass(frozen=True)
class KeySummary:
    key_id: str
    prefix: str  # the first characters of ``ak_…``, enough to recognise it
    label: str | None
    created_at_ms: int
    revoked_at_ms: int | None
    last_used_at_ms: int | None = None


@dataclass(frozen=True)
class PublicKeySummary:
    fingerprint: str  # lowercase hex SHA-256 of the DER SubjectPublicKeyInfo
    created_at_ms: int


@dataclass(frozen=True)
class KeyDetails:
    """One key as its dashboard page shows it."""

    summary: KeySummary
    public_keys: list[PublicKeySummary]
    v2_enabled: bool
    signed_reads_setting: bool | None  # None: the default
    ip_allowlist: list[str]  # normalised networks; empty: any address

    @property
    def signed_reads(self) -> bool:
        """Whether reads need a signature now (the setting, or its default)."""
        return signed_reads_required(
            self.signed_reads_setting, has_public_key=bool(self.public_keys)
        )

    @property
    def accepts_v2(self) -> bool:
        return not self.public_keys or self.v2_enabled


def _summary(key: ApiKey) -> KeySummary:
    return KeySummary(
        key.id,
        key.key_prefix,
        key.label,
        key.created_at_ms,
        key.revoked_at_ms,
        key.last_used_at_ms,
    )


def readable_api_keys(merchant_id: str) -> Select[ApiKey]:
    return select(ApiKey).where(ApiKey.merchant_id == merchant_id)


def checked_label(value: str) -> str | None:
    """A key's label: trimmed, at most 80 characters, no control characters; empty is none."""
    label = value.strip()
    if len(label) > MAX_LABEL or any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise InvalidRequest(
            f"a key label is at most {MAX_LABEL} characters of text", code="invalid_label"
        )
    return label or None


async def list_api_keys(session: AsyncSession, merchant_id: str) -> list[KeySummary]:
    """The merchant's keys, active first, then newest first."""
    rows = await session.scalars(
        readable_api_keys(merchant_id).order_by(
            ApiKey.revoked_at_ms.is_not(None), ApiKey.created_at_ms.desc(), ApiKey.id
        )
    )
    return [_summary(key) for key in rows.all()]


async def create_api_key(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    *,
    merchant_id: str,
    label: str,
    actor: str,
) -> tuple[str, str]:
    """A new key for the merchant (audited): ``ak_…`` and ``sk_…``, returned this once."""
    api_key, secret_key = await issue_api_key(
        session, box, clock, merchant_id, label=checked_label(label)
    )
    session.add(
        AuditEntry(
            at_ms=clock.now_ms(),
            actor=actor,
            action="api_key.created",
            subject=merchant_id,
            details={"keyPrefix": api_key[:10]},
        )
    )
    await session.flush()
    return api_key, secret_key


async def revoke_api_key(
    session: AsyncSession, clock: Clock, *, merchant_id: str, key_id: str, actor: str
) -> ApiKey:
    """Revoke one of the merchant's keys at once (audited); another merchant's key id is
    ``not_found``, exactly like an id that does not exist. Revoking twice changes nothing."""
    key = await session.scalar(readable_api_keys(merchant_id).where(ApiKey.id == key_id))
    if key is None:
        raise NotFound("no such API key")
    if key.revoked_at_ms is None:
        key.revoked_at_ms = clock.now_ms()
        session.add(
            AuditEntry(
                at_ms=clock.now_ms(),
                actor=actor,
                action="api_key.revoked",
                subject=merchant_id,
                details={"apiKeyId": key.id},
            )
        )
        await session.flush()
    return key


async def _active_key(session: AsyncSession, merchant_id: str, key_id: str) -> ApiKey:
    """The merchant's key ``key_id`` if it is not revoked; anything else is ``not_found``."""
    key = await session.scalar(
        readable_api_keys(merchant_id).where(ApiKey.id == key_id, ApiKey.revoked_at_ms.is_(None))
    )
    if key is None:
        raise NotFound("no such API key")
    return key


async def api_key_details(session: AsyncSession, merchant_id: str, key_id: str) -> KeyDetails:
    """One of the merchant's keys, revoked or not, with its public keys and policies."""
    key = await session.scalar(readable_api_keys(merchant_id).where(ApiKey.id == key_id))
    if key is None:
        raise NotFound("no such API key")
    public_keys = await session.execute(
        select(ApiPublicKey.fingerprint, ApiPublicKey.created_at_ms)
        .where(ApiPublicKey.api_key_id == key.id)
        .order_by(ApiPublicKey.created_at_ms, ApiPublicKey.id)
    )
    return KeyDetails(
        summary=_summary(key),
        public_keys=[PublicKeySummary(f, at) for f, at in public_keys.all()],
        v2_enabled=key.v2_enabled,
        signed_reads_setting=key.signed_reads,
        ip_allowlist=key.ip_allowlist.split(",") if key.ip_allowlist else [],
    )


async def add_key_public_key(
    session: AsyncSession,
    clock: Clock,
    *,
    merchant_id: str,
    key_id: str,
    pem: str,
    actor: str,
) -> str:
    """Register a P-256 public key (PEM text, checked as ``merchant add-public-key`` checks
    it) for one of the merchant's active keys; the key then accepts V1 signatures only. At most
    :data:`MAX_PUBLIC_KEYS` per key (each is tried on every V1 request)."""
    key = await _active_key(session, merchant_id, key_id)
    public_key = load_public_key_pem(pem.strip())
    count = await session.scalar(
        select(func.count()).select_from(ApiPublicKey).where(ApiPublicKey.api_key_id == key.id)
    )
    if (count or 0) >= MAX_PUBLIC_KEYS:
        raise InvalidRequest(
            f"an API key has at most {MAX_PUBLIC_KEYS} public keys", code="too_many_public_keys"
        )
    return await register_public_key(session, clock, key, public_key, actor=actor)


async def set_key_signed_reads(
    session: AsyncSession,
    clock: Clock,
    *,
    merchant_id: str,
    key_id: str,
    required: bool,
    actor: str,
) -> None:
    """Require signatures on reads with this key, or allow the key alone (audited like
    ``merchant set-key-policy --signed-reads/--unsigned-reads``)."""
    key = await _active_key(session, merchant_id, key_id)
    await apply_key_policy(session, clock, key, v2_enabled=None, signed_reads=required, actor=actor)


async def set_key_ip_allowlist(
    session: AsyncSession,
    clock: Clock,
    *,
    merchant_id: str,
    key_id: str,
    text: str,
    actor: str,
) -> list[str]:
    """Set the addresses and networks the key may be used from (empty: any address); returns
    the normalised list (:func:`~stablegate.auth.ip_allowlist.checked_ip_allowlist`)."""
    key = await _active_key(session, merchant_id, key_id)
    networks = checked_ip_allowlist(text)
    key.ip_allowlist = stored_ip_allowlist(networks)
    session.add(
        AuditEntry(
            at_ms=clock.now_ms(),
            actor=actor,
            action="api_key.ip_allowlist_set",
            subject=merchant_id,
            details={"apiKeyId": key.id, "ipAllowlist": networks},
        )
    )
    await session.flush()
    return networks
