"""Dashboard log-in sessions, kept on the server (docs/DESIGN.md §9 "Merchant dashboard").

The cookie holds a random 256-bit token; the table holds its SHA-256, so a copy of the table
logs nobody in. A session lasts 7 days at most and ends after 24 hours without a request; every
log-in makes a new one (the token a browser had before cannot become a logged-in session), and
the user can list and end any of them.

With two-factor on, the password alone makes a *pending* session (``second_factor_pending``):
it lasts 5 minutes and opens no page but the second step, which ends it and starts a new one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.errors import NotFound
from stablegate.models import DashboardSession, DashboardUser, Merchant, OperatorSession
from stablegate.models.merchant import MerchantStatus
from stablegate.secret_box import new_token

SESSION_TTL_MS = 7 * 86_400_000
IDLE_TIMEOUT_MS = 24 * 3_600_000
# last_seen is written at most this often, not on every page.
TOUCH_EVERY_MS = 60_000
MAX_USER_AGENT = 300
# Time to enter the code after the password.
PENDING_TTL_MS = 5 * 60_000


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of a request."""

    session_id: str
    token: str  # the cookie's token (the CSRF token is derived from it)
    user_id: str
    email: str
    merchant_id: str
    merchant_name: str


@dataclass(frozen=True)
class PendingLogin:
    """A log-in whose password was right and whose second factor is awaited."""

    session_id: str
    token: str
    user_id: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


SessionModel = type[DashboardSession] | type[OperatorSession]


@dataclass(frozen=True)
class SessionTable:
    """Where one kind of log-in session lives: the dashboard's (merchant users) or the operator
    console's, each in its own table so neither's token opens the other."""

    model: SessionModel
    owner: str  # the column naming the account: ``user_id`` or ``operator_id``
    id_prefix: str

    def owner_is(self, owner_id: str) -> ColumnElement[bool]:
        column: ColumnElement[str] = getattr(self.model, self.owner)
        return column == owner_id


DASHBOARD_SESSIONS = SessionTable(DashboardSession, "user_id", "ses_")


def live_session(model: SessionModel, now: int) -> list[ColumnElement[bool]]:
    """Not ended, not expired, used within the idle timeout."""
    return [
        model.revoked_at_ms.is_(None),
        model.expires_at_ms > now,
        model.last_seen_at_ms > now - IDLE_TIMEOUT_MS,
    ]


def add_session(
    session: AsyncSession,
    clock: Clock,
    table: SessionTable,
    owner_id: str,
    *,
    user_agent: str,
    ip: str,
    pending: bool,
) -> str:
    """A new session row for the account (``pending``: awaiting the second factor, for 5
    minutes); returns the cookie's token (shown nowhere else)."""
    now = clock.now_ms()
    token = secrets.token_urlsafe(32)
    session.add(
        table.model(
            id=new_token(table.id_prefix, 12),
            token_hash=token_hash(token),
            created_at_ms=now,
            expires_at_ms=now + (PENDING_TTL_MS if pending else SESSION_TTL_MS),
            last_seen_at_ms=now,
            user_agent=user_agent[:MAX_USER_AGENT],
            ip=ip[:45],
            second_factor_pending=pending,
            **{table.owner: owner_id},
        )
    )
    return token


async def revoke_owned(
    session: AsyncSession, clock: Clock, table: SessionTable, *, owner_id: str, session_id: str
) -> None:
    """End one of the account's sessions; another account's session id is ``not_found``."""
    model = table.model
    ended = await session.execute(
        update(model)
        .where(model.id == session_id, table.owner_is(owner_id), model.revoked_at_ms.is_(None))
        .values(revoked_at_ms=clock.now_ms())
        .execution_options(synchronize_session=False)
    )
    if getattr(ended, "rowcount", 0) != 1:
        raise NotFound("no such session")


async def end_by_token(
    session: AsyncSession, clock: Clock, model: SessionModel, token: str | None
) -> None:
    """Log out: the session of this cookie token ends (nothing happens for an unknown one)."""
    if not token:
        return
    await session.execute(
        update(model)
        .where(model.token_hash == token_hash(token), model.revoked_at_ms.is_(None))
        .values(revoked_at_ms=clock.now_ms())
        .execution_options(synchronize_session=False)
    )


async def end_owned(
    session: AsyncSession,
    clock: Clock,
    table: SessionTable,
    owner_id: str,
    *,
    keep: str | None = None,
) -> None:
    """End every session of the account (pending ones too), but the one whose id is ``keep``."""
    model = table.model
    await session.execute(
        update(model)
        .where(table.owner_is(owner_id), model.revoked_at_ms.is_(None), model.id != (keep or ""))
        .values(revoked_at_ms=clock.now_ms())
        .execution_options(synchronize_session=False)
    )


async def start_session(
    session: AsyncSession,
    clock: Clock,
    user: DashboardUser,
    *,
    user_agent: str,
    ip: str,
    pending: bool = False,
) -> str:
    """A new session for the user (``pending``: awaiting the second factor, for 5 minutes);
    returns the cookie's token (shown nowhere else)."""
    token = add_session(
        session, clock, DASHBOARD_SESSIONS, user.id, user_agent=user_agent, ip=ip, pending=pending
    )
    if not pending:
        user.last_login_at_ms = clock.now_ms()
    await session.flush()
    return token


def _live(now: int) -> list[ColumnElement[bool]]:
    return live_session(DashboardSession, now)


async def load_viewer(session: AsyncSession, clock: Clock, token: str | None) -> Viewer | None:
    """Who holds this cookie token, if its session is live, past its second factor, and its
    merchant active."""
    if not token:
        return None
    now = clock.now_ms()
    row = (
        await session.execute(
            select(DashboardSession, DashboardUser, Merchant)
            .join(DashboardUser, DashboardUser.id == DashboardSession.user_id)
            .join(Merchant, Merchant.id == DashboardUser.merchant_id)
            .where(
                DashboardSession.token_hash == token_hash(token),
                DashboardSession.second_factor_pending.is_(False),
                *_live(now),
            )
        )
    ).first()
    if row is None:
        return None
    held, user, merchant = row
    if merchant.status != MerchantStatus.ACTIVE:
        return None
    if now - held.last_seen_at_ms >= TOUCH_EVERY_MS:
        held.last_seen_at_ms = now
        await session.flush()
    return Viewer(held.id, token, user.id, user.email, merchant.id, merchant.name)


async def load_pending(
    session: AsyncSession, clock: Clock, token: str | None
) -> PendingLogin | None:
    """The pending log-in of this cookie token, if it has not expired."""
    if not token:
        return None
    held = await session.scalar(
        select(DashboardSession).where(
            DashboardSession.token_hash == token_hash(token),
            DashboardSession.second_factor_pending.is_(True),
            *_live(clock.now_ms()),
        )
    )
    return PendingLogin(held.id, token, held.user_id) if held is not None else None


async def list_sessions(
    session: AsyncSession, clock: Clock, user_id: str
) -> list[DashboardSession]:
    """The user's live sessions, most recently used first."""
    rows = await session.scalars(
        select(DashboardSession)
        .where(
            DashboardSession.user_id == user_id,
            DashboardSession.second_factor_pending.is_(False),
            *_live(clock.now_ms()),
        )
        .order_by(DashboardSession.last_seen_at_ms.desc(), DashboardSession.id)
    )
    return list(rows.all())


async def revoke_session(
    session: AsyncSession, clock: Clock, *, user_id: str, session_id: str
) -> None:
    """End one of the user's sessions; another user's session id is ``not_found``."""
    await revoke_owned(session, clock, DASHBOARD_SESSIONS, owner_id=user_id, session_id=session_id)


async def end_session(session: AsyncSession, clock: Clock, token: str | None) -> None:
    """Log out: the session of this cookie token ends (nothing happens for an unknown one)."""
    await end_by_token(session, clock, DashboardSession, token)


async def end_user_sessions(
    session: AsyncSession, clock: Clock, user_id: str, *, keep: str | None = None
) -> None:
    """End every session of the user (pending ones too), but the one whose id is ``keep``:
    after a password change or reset, nobody stays logged in on the old password."""
    await end_owned(session, clock, DASHBOARD_SESSIONS, user_id, keep=keep)
