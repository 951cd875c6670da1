"""Dashboard accounts: sign-up (a merchant and its owner) and the checks of a log-in.

Passwords arrive hashed (:mod:`stablegate.dashboard.passwords`, run before the transaction so
no database lock is held while Argon2 works); the rules here decide who may log in under the
operator's sign-up policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.config import SignupPolicy
from stablegate.dashboard.errors import AccountError
from stablegate.dashboard.invites import use_invite
from stablegate.merchants.service import add_merchant
from stablegate.models import DashboardUser, Merchant
from stablegate.models.dashboard_user import UserRole
from stablegate.models.merchant import MerchantStatus
from stablegate.secret_box import SecretBox, new_token

MAX_NAME = 200
MAX_EMAIL = 254
# RFC 5322's dot-atom on both sides (what every SMTP server takes without quoting; no quoted
# local parts, no raw Unicode: an IDN domain is written in its xn-- form), a dot in the domain.
# Enough to catch typos; the verification link is what proves the address.
EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


@dataclass(frozen=True)
class NewAccount:
    user: DashboardUser
    merchant_id: str
    pending_approval: bool


def checked_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise AccountError(
            f"the business name is 1 to {MAX_NAME} characters of text", code="invalid_name"
        )
    return name


def normalized_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > MAX_EMAIL or not EMAIL.match(email):
        raise AccountError("this is not an email address", code="invalid_email")
    return email


async def sign_up(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    *,
    policy: SignupPolicy,
    name: str,
    email: str,
    password_hash: str,
    invite_code: str = "",
) -> NewAccount:
    """A merchant (pending under the approval policy) and its owner account (audited)."""
    name, email = checked_name(name), normalized_email(email)
    taken = await session.scalar(
        select(func.count()).select_from(DashboardUser).where(DashboardUser.email == email)
    )
    if taken:
        raise AccountError("an account with this email exists", code="email_taken")
    status = MerchantStatus.PENDING if policy == SignupPolicy.APPROVAL else MerchantStatus.ACTIVE
    merchant_id, _webhook_secret = await add_merchant(
        session, box, clock, name=name, status=status, actor=f"dashboard:{email}"[:200]
    )
    if policy == SignupPolicy.INVITE:
        await use_invite(session, clock, invite_code, merchant_id)
    user = await add_owner(session, clock, merchant_id, email, password_hash)
    return NewAccount(user, merchant_id, status == MerchantStatus.PENDING)


async def add_owner(
    session: AsyncSession,
    clock: Clock,
    merchant_id: str,
    email: str,
    password_hash: str,
    *,
    verified: bool = False,
) -> DashboardUser:
    """The owner account of a merchant; ``verified`` only where the address needs no link (the
    demo's own merchant)."""
    now = clock.now_ms()
    user = DashboardUser(
        id=new_token("usr_", 12),
        merchant_id=merchant_id,
        email=normalized_email(email),
        password_hash=password_hash,
        role=UserRole.OWNER,
        created_at_ms=now,
        email_verified_at_ms=now if verified else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        # The same address signing up twice at once: the unique index decides.
        raise AccountError("an account with this email exists", code="email_taken") from None
    return user


async def find_user(session: AsyncSession, email: str) -> DashboardUser | None:
    try:
        address = normalized_email(email)
    except AccountError:
        return None
    return await session.scalar(select(DashboardUser).where(DashboardUser.email == address))


async def check_may_log_in(session: AsyncSession, user: DashboardUser) -> Merchant:
    """After the password matched: is this account allowed in yet? Under every policy the
    address must be verified (by the mailed link, or the link the operator handed out), and
    under the approval policy the operator must have approved the merchant. Told only to
    someone who knows the password, so it reveals nothing to a guesser."""
    merchant = await session.get(Merchant, user.merchant_id)
    if merchant is None:
        raise AccountError("the email or password is wrong", code="invalid_credentials")
    if merchant.status == MerchantStatus.DISABLED:
        raise AccountError(
            "the operator has disabled this merchant account", code="merchant_disabled"
        )
    if merchant.status == MerchantStatus.PENDING:
        raise AccountError(
            "the operator has not approved this account yet", code="merchant_pending"
        )
    if user.email_verified_at_ms is None:
        raise AccountError("verify your email address first", code="email_not_verified")
    return merchant
