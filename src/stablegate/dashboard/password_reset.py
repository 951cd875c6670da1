"""Password reset by email (docs/DESIGN.md §9 "Merchant dashboard").

A reset link (:mod:`stablegate.dashboard.links`, purpose ``reset_password``) lasts an hour and
works once, for the address it was sent to: after the user changes the address it is void. Using
it sets the new password, ends every session of the user (whoever logged in with the old
password is out) and voids the user's other reset links. The second factor stays as it was: a
reset replaces the password only, so a stolen mailbox alone does not open an account with 2FA.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.dashboard.accounts import find_user
from stablegate.dashboard.errors import AccountError
from stablegate.dashboard.links import checked_link, issue_link, spend_link
from stablegate.dashboard.sessions import end_user_sessions
from stablegate.models import DashboardUser, EmailLink, Merchant
from stablegate.models.email_link import LinkPurpose


@dataclass(frozen=True)
class ResetMail:
    """What to mail: the link, to the account's address, with the merchant's name."""

    email: str
    merchant_name: str
    url: str


async def request_reset(
    session: AsyncSession, clock: Clock, key: bytes, public_url: str, email: str
) -> ResetMail | None:
    """A reset link for the account with this address; None when there is none (the caller
    answers the same either way, so nobody learns which addresses have accounts)."""
    user = await find_user(session, email)
    if user is None:
        return None
    url = await issue_link(
        session, clock, key, public_url, user, purpose=LinkPurpose.RESET_PASSWORD
    )
    merchant = await session.get(Merchant, user.merchant_id)
    return ResetMail(user.email, merchant.name if merchant else "", url)


async def checked_reset_link(
    session: AsyncSession, clock: Clock, key: bytes, token: str
) -> tuple[EmailLink, DashboardUser]:
    """The reset link a token names and its user, if it is valid, unused, unexpired and was
    sent to the user's current address."""
    link = await checked_link(session, clock, key, token, purpose=LinkPurpose.RESET_PASSWORD)
    user = await session.get(DashboardUser, link.user_id)
    if user is None or user.email != link.email:
        raise AccountError("this link went to another address", code="link_address_changed")
    return link, user


async def reset_password(
    session: AsyncSession, clock: Clock, key: bytes, token: str, password_hash: str
) -> DashboardUser:
    """Use a reset link: the new password (hashed by the caller, outside the transaction), every
    session ended, this link spent and the user's other reset links void."""
    link, user = await checked_reset_link(session, clock, key, token)
    now = clock.now_ms()
    await spend_link(session, link, now)
    await session.execute(
        update(EmailLink)
        .where(
            EmailLink.user_id == user.id,
            EmailLink.purpose == LinkPurpose.RESET_PASSWORD,
            EmailLink.used_at_ms.is_(None),
        )
        .values(used_at_ms=now)
        .execution_options(synchronize_session=False)
    )
    user.password_hash = password_hash
    # The link reached the address, as a verification link would have.
    if user.email_verified_at_ms is None:
        user.email_verified_at_ms = now
    await end_user_sessions(session, clock, user.id)
    await session.flush()
    return user
