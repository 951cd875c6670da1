"""The sign-up policy in force (docs/DESIGN.md §9 "Merchant dashboard"): the operator's choice
made in the console (a ``gateway_settings`` row), else ``STABLEGATE_SIGNUP_POLICY``.

Read on every sign-up request, so a change applies at once in every API process. ``open`` needs
SMTP (its accounts prove their address by a mailed link): it cannot be chosen without
``STABLEGATE_SMTP_URL``, and a stored ``open`` on a gateway whose SMTP was later removed falls
back to the environment's policy, which the settings check already keeps from being ``open``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.config import Settings, SignupPolicy
from stablegate.dashboard.errors import AccountError
from stablegate.models import AuditEntry
from stablegate.models.gateway_setting import GatewaySetting

POLICY_SETTING = "signup_policy"


async def current_policy(session: AsyncSession, settings: Settings) -> SignupPolicy:
    row = await session.get(GatewaySetting, POLICY_SETTING)
    if row is None:
        return settings.signup_policy
    try:
        policy = SignupPolicy(row.value)
    except ValueError:
        return settings.signup_policy
    if policy == SignupPolicy.OPEN and settings.smtp_url is None:
        return settings.signup_policy
    return policy


async def set_policy(
    session: AsyncSession, clock: Clock, settings: Settings, value: str, *, actor: str
) -> SignupPolicy:
    """Store the operator's policy (audited with the one it replaced)."""
    try:
        policy = SignupPolicy(value)
    except ValueError:
        raise AccountError("choose open, approval or invite", code="invalid_policy") from None
    if policy == SignupPolicy.OPEN and settings.smtp_url is None:
        raise AccountError(
            "open sign-up needs STABLEGATE_SMTP_URL to mail verification links",
            code="policy_needs_smtp",
        )
    before = await current_policy(session, settings)
    now = clock.now_ms()
    row = await session.get(GatewaySetting, POLICY_SETTING)
    if row is None:
        session.add(
            GatewaySetting(
                name=POLICY_SETTING, value=str(policy), updated_at_ms=now, updated_by=actor
            )
        )
    else:
        row.value, row.updated_at_ms, row.updated_by = str(policy), now, actor
    if before != policy:
        session.add(
            AuditEntry(
                at_ms=now,
                actor=actor,
                action="gateway.signup_policy",
                subject="gateway",
                details={"from": str(before), "to": str(policy)},
            )
        )
    await session.flush()
    return policy
