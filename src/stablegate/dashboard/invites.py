"""Invite codes for the ``invite`` sign-up policy: made by the operator
(``stablegate dashboard invite``), printed once, stored as a hash, single use, expiring."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.dashboard.errors import AccountError
from stablegate.models import AuditEntry, SignupInvite
from stablegate.secret_box import new_token

DAY_MS = 86_400_000


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8", "surrogateescape")).hexdigest()


async def create_invite(
    session: AsyncSession, clock: Clock, *, days: int, note: str | None, actor: str = "cli"
) -> tuple[str, SignupInvite]:
    """A new code (returned once) valid for ``days`` days."""
    if not 1 <= days <= 365:
        raise AccountError("an invite lasts 1 to 365 days", code="invalid_invite")
    code = new_token("inv_", 18)
    now = clock.now_ms()
    invite = SignupInvite(
        id=new_token("ivt_", 12),
        code_hash=_hash(code),
        note=note,
        created_at_ms=now,
        expires_at_ms=now + days * DAY_MS,
    )
    session.add(invite)
    session.add(
        AuditEntry(
            at_ms=now,
            actor=actor,
            action="signup_invite.created",
            subject=invite.id,
            details={"expiresAt": invite.expires_at_ms, "note": note},
        )
    )
    await session.flush()
    return code, invite


async def use_invite(session: AsyncSession, clock: Clock, code: str, merchant_id: str) -> None:
    """Spend a code on the merchant it creates; unknown, used and expired codes read alike."""
    if not code.strip():
        raise AccountError("sign-up needs an invite code", code="invite_required")
    now = clock.now_ms()
    invite = await session.scalar(select(SignupInvite).where(SignupInvite.code_hash == _hash(code)))
    if invite is None or invite.used_at_ms is not None or now >= invite.expires_at_ms:
        raise AccountError("this invite code is not valid", code="invalid_invite")
    spent = await session.execute(
        update(SignupInvite)
        .where(SignupInvite.id == invite.id, SignupInvite.used_at_ms.is_(None))
        .values(used_at_ms=now, used_by_merchant_id=merchant_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(spent, "rowcount", 0) != 1:
        raise AccountError("this invite code is not valid", code="invalid_invite")
