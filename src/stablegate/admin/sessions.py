"""Console log-in sessions: the dashboard's rules (:mod:`stablegate.dashboard.sessions`: a
random cookie token stored as its SHA-256, 7 days at most, 24 hours idle, a new session at every
log-in, a 5-minute pending session while the second factor is awaited) in a table of their own,
so no merchant's session can ever open the console. A disabled operator's sessions stop at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.dashboard.sessions import (
    TOUCH_EVERY_MS,
    SessionTable,
    add_session,
    end_by_token,
    end_owned,
    live_session,
    revoke_owned,
    token_hash,
)
from stablegate.models.operator_account import OperatorAccount, OperatorSession


@dataclass(frozen=True)
class Operator:
    """The signed-in operator of a request."""

    session_id: str
    token: str  # the cookie's token (the form token is derived from it)
    operator_id: str
    email: str


CONSOLE_SESSIONS = SessionTable(OperatorSession, "operator_id", "ops_")


def _live(now: int) -> list[ColumnElement[bool]]:
    # A disabled account's sessions end with it.
    return [*live_session(OperatorSession, now), OperatorAccount.disabled_at_ms.is_(None)]


async def start_session(
    session: AsyncSession,
    clock: Clock,
    operator: OperatorAccount,
    *,
    user_agent: str,
    ip: str,
    pending: bool = False,
) -> str:
    token = add_session(
        session, clock, CONSOLE_SESSIONS, operator.id, user_agent=user_agent, ip=ip, pending=pending
    )
    if not pending:
        operator.last_login_at_ms = clock.now_ms()
    await session.flush()
    return token


async def _held(
    session: AsyncSession, clock: Clock, token: str, *, pending: bool
) -> tuple[OperatorSession, OperatorAccount] | None:
    row = (
        await session.execute(
            select(OperatorSession, OperatorAccount)
            .join(OperatorAccount, OperatorAccount.id == OperatorSession.operator_id)
            .where(
                OperatorSession.token_hash == token_hash(token),
                OperatorSession.second_factor_pending.is_(pending),
                *_live(clock.now_ms()),
            )
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def load_operator(session: AsyncSession, clock: Clock, token: str | None) -> Operator | None:
    """Who holds this cookie token, if its session is live and past its second factor, and the
    account is not disabled."""
    if not token:
        return None
    found = await _held(session, clock, token, pending=False)
    if found is None:
        return None
    held, operator = found
    now = clock.now_ms()
    if now - held.last_seen_at_ms >= TOUCH_EVERY_MS:
        held.last_seen_at_ms = now
        await session.flush()
    return Operator(held.id, token, operator.id, operator.email)


async def load_pending(
    session: AsyncSession, clock: Clock, token: str | None
) -> tuple[str, str] | None:
    """(the pending session's token, the operator's id) while the second step is awaited."""
    if not token:
        return None
    found = await _held(session, clock, token, pending=True)
    return (token, found[1].id) if found is not None else None


async def list_sessions(
    session: AsyncSession, clock: Clock, operator_id: str
) -> list[OperatorSession]:
    rows = await session.scalars(
        select(OperatorSession)
        .join(OperatorAccount, OperatorAccount.id == OperatorSession.operator_id)
        .where(
            OperatorSession.operator_id == operator_id,
            OperatorSession.second_factor_pending.is_(False),
            *_live(clock.now_ms()),
        )
        .order_by(OperatorSession.last_seen_at_ms.desc(), OperatorSession.id)
    )
    return list(rows.all())


async def revoke_session(
    session: AsyncSession, clock: Clock, *, operator_id: str, session_id: str
) -> None:
    """End one of the operator's own sessions; any other id is ``not_found``."""
    await revoke_owned(
        session, clock, CONSOLE_SESSIONS, owner_id=operator_id, session_id=session_id
    )


async def end_session(session: AsyncSession, clock: Clock, token: str | None) -> None:
    await end_by_token(session, clock, OperatorSession, token)


async def end_operator_sessions(session: AsyncSession, clock: Clock, operator_id: str) -> None:
    """Every session of the account ends (after a password is set from the command line)."""
    await end_owned(session, clock, CONSOLE_SESSIONS, operator_id)
