"""A merchant's own API keys, as the dashboard lists and revokes them: every statement starts
from :func:`readable_api_keys`, scoped to the merchant, so another merchant's key is never
found (docs/DESIGN.md §1)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.errors import InvalidRequest, NotFound
from stablegate.merchants.service import issue_api_key
from stablegate.models import ApiKey, AuditEntry
from stablegate.secret_box import SecretBox

MAX_LABEL = 80


@dataclass(frozen=True)
class KeySummary:
    key_id: str
    prefix: str  # the first characters of ``ak_…``, enough to recognise it
    label: str | None
    created_at_ms: int
    revoked_at_ms: int | None


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
    return [
        KeySummary(key.id, key.key_prefix, key.label, key.created_at_ms, key.revoked_at_ms)
        for key in rows.all()
    ]


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
