"""Dashboard log-in sessions, kept on the server (docs/DESIGN.md §9 "Merchant dashboard").

The cookie holds a random 256-bit token; the table holds its SHA-256, so a copy of the table
logs nobody in. A session lasts 7 days at most and ends after 24 hours without a request; every
log-in makes a new one (the token a browser had before cannot become a logged-in session), and
the user can list and end any of them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.errors import NotFound
from stablegate.models import DashboardSession, DashboardUser, Merchant
from stablegate.models.merchant import MerchantStatus
from stablegate.secret_box import new_token

SESSION_TTL_MS = 7 * 86_400_000
IDLE_TIMEOUT_MS = 24 * 3_600_000
# last_seen is written at most this often, not on every page.
TOUCH_EVERY_MS = 60_000
MAX_USER_AGENT = 300


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of a request."""

    session_id: str
    token: str  # the cookie's token (the CSRF token is derived from it)
    user_id: str
    email: str
    merchant_id: str
    merchant_name: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


async def start_session(
    session: AsyncSession, clock: Clock, user: DashboardUser, *, user_agent: str, ip: str
) -> str:
    """A new session for the user; returns the cookie's token (shown nowhere else)."""
    now = clock.now_ms()
    token = secrets.token_urlsafe(32)
    session.add(
        DashboardSession(
            id=new_token("ses_", 12),
            token_hash=token_hash(token),
            user_id=user.id,
            created_at_ms=now,
            expires_at_ms=now + SESSION_TTL_MS,
            last_seen_at_ms=now,
            user_agent=user_agent[:MAX_USER_AGENT],
            ip=ip[:45],
        )
    )
    user.last_login_at_ms = now
    await session.flush()
    return token


def _live(now: int) -> list[ColumnElement[bool]]:
    return [
        DashboardSession.revoked_at_ms.is_(None),
        DashboardSession.expires_at_ms > now,
        DashboardSession.last_seen_at_ms > now - IDLE_TIMEOUT_MS,
    ]


async def load_viewer(session: AsyncSession, clock: Clock, token: str | None) -> Viewer | None:
    """Who holds this cookie token, if its session is live and its merchant active."""
    if not token:
        return None
    now = clock.now_ms()
    row = (
        await session.execute(
            select(DashboardSession, DashboardUser, Merchant)
            .join(DashboardUser, DashboardUser.id == DashboardSession.user_id)
            .join(Merchant, Merchant.id == DashboardUser.merchant_id)
            .where(DashboardSession.token_hash == token_hash(token), *_live(now))
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


async def list_sessions(
    session: AsyncSession, clock: Clock, user_id: str
) -> list[DashboardSession]:
    """The user's live sessions, most recently used first."""
    rows = await session.scalars(
        select(DashboardSession)
        .where(DashboardSession.user_id == user_id, *_live(clock.now_ms()))
        .order_by(DashboardSession.last_seen_at_ms.desc(), DashboardSession.id)
    )
    return list(rows.all())


async def revoke_session(
    session: AsyncSession, clock: Clock, *, user_id: str, session_id: str
) -> None:
    """End one of the user's sessions; another user's session id is ``not_found``."""
    ended = await session.execute(
        update(DashboardSession)
        .where(
            DashboardSession.id == session_id,
            DashboardSession.user_id == user_id,
            DashboardSession.revoked_at_ms.is_(None),
        )
        .values(revoked_at_ms=clock.now_ms())
        .execution_options(synchronize_session=False)
    )
    if getattr(ended, "rowcount", 0) != 1:
        raise NotFound("no such session")


async def end_session(session: AsyncSession, clock: Clock, token: str | None) -> None:
    """Log out: the session of this cookie token ends (nothing happens for an unknown one)."""
    if not token:
        return
    await session.execute(
        update(DashboardSession)
        .where(
            DashboardSession.token_hash == token_hash(token),
            DashboardSession.revoked_at_ms.is_(None),
        )
        .values(revoked_at_ms=clock.now_ms())
        .execution_options(synchronize_session=False)
    )
