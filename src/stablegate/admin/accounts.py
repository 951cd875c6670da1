"""Operator accounts of the console: made by ``stablegate admin create`` only (there is no
sign-up page), disabled rather than deleted so the audit log keeps naming them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.dashboard.accounts import normalized_email
from stablegate.dashboard.errors import AccountError
from stablegate.errors import NotFound
from stablegate.models import AuditEntry
from stablegate.models.operator_account import OperatorAccount
from stablegate.secret_box import new_token


def actor_of(email: str) -> str:
    """How the audit log names what an operator did in the console."""
    return f"admin:{email}"[:200]


async def create_operator(
    session: AsyncSession, clock: Clock, email: str, password_hash: str, *, actor: str = "cli"
) -> OperatorAccount:
    address = normalized_email(email)
    operator = OperatorAccount(
        id=new_token("opr_", 12),
        email=address,
        password_hash=password_hash,
        created_at_ms=clock.now_ms(),
    )
    session.add(operator)
    try:
        await session.flush()
    except IntegrityError:
        raise AccountError("an operator with this email exists", code="email_taken") from None
    session.add(
        AuditEntry(
            at_ms=operator.created_at_ms,
            actor=actor,
            action="operator.created",
            subject=operator.id,
            details={"email": address},
        )
    )
    await session.flush()
    return operator


async def find_operator(session: AsyncSession, email: str) -> OperatorAccount | None:
    try:
        address = normalized_email(email)
    except AccountError:
        return None
    return await session.scalar(select(OperatorAccount).where(OperatorAccount.email == address))


async def list_operators(session: AsyncSession) -> list[OperatorAccount]:
    rows = await session.scalars(select(OperatorAccount).order_by(OperatorAccount.created_at_ms))
    return list(rows.all())


async def operator_by_email(session: AsyncSession, email: str) -> OperatorAccount:
    operator = await find_operator(session, email)
    if operator is None:
        raise NotFound("no operator with this email")
    return operator


async def set_disabled(
    session: AsyncSession, clock: Clock, email: str, *, disabled: bool, actor: str = "cli"
) -> OperatorAccount:
    """Disable (every session of the account ends: the session check reads this column) or
    enable an operator, audited."""
    operator = await operator_by_email(session, email)
    now = clock.now_ms()
    if (operator.disabled_at_ms is not None) != disabled:
        operator.disabled_at_ms = now if disabled else None
        session.add(
            AuditEntry(
                at_ms=now,
                actor=actor,
                action="operator.disabled" if disabled else "operator.enabled",
                subject=operator.id,
                details={"email": operator.email},
            )
        )
        await session.flush()
    return operator


async def set_password(
    session: AsyncSession, clock: Clock, email: str, password_hash: str, *, actor: str = "cli"
) -> OperatorAccount:
    """A new password (audited); the caller ends the account's sessions."""
    operator = await operator_by_email(session, email)
    operator.password_hash = password_hash
    session.add(
        AuditEntry(
            at_ms=clock.now_ms(),
            actor=actor,
            action="operator.password_set",
            subject=operator.id,
            details={},
        )
    )
    await session.flush()
    return operator
