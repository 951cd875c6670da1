"""Links mailed to dashboard users (email verification, password reset): signed, expiring,
single use, each good only for its own purpose.

A link's token is ``<row id>.<HMAC of the row's fields>``: the table alone gives nobody a
working link, a changed expiry or address breaks the signature, and the operator's CLI can
rebuild a pending link from the row when there is no SMTP server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.dashboard.errors import AccountError
from stablegate.models import DashboardUser, EmailLink
from stablegate.models.email_link import LinkPurpose
from stablegate.secret_box import new_token

LINK_TTL_MS = 24 * 3_600_000
RESET_TTL_MS = 3_600_000
VERIFY_PATH = "/dashboard/verify"
RESET_PATH = "/dashboard/reset"
PATHS = {LinkPurpose.VERIFY_EMAIL: VERIFY_PATH, LinkPurpose.RESET_PASSWORD: RESET_PATH}
LIFETIMES = {LinkPurpose.VERIFY_EMAIL: LINK_TTL_MS, LinkPurpose.RESET_PASSWORD: RESET_TTL_MS}


@dataclass(frozen=True)
class PendingLink:
    email: str
    merchant_id: str
    purpose: str
    url: str
    expires_at_ms: int


def _signature(key: bytes, link: EmailLink) -> str:
    message = "|".join(
        (link.id, link.user_id, str(link.purpose), link.email, str(link.expires_at_ms))
    ).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_url(public_url: str, key: bytes, link: EmailLink) -> str:
    path = PATHS[LinkPurpose(link.purpose)]
    return f"{public_url}{path}?token={link.id}.{_signature(key, link)}"


async def issue_link(
    session: AsyncSession,
    clock: Clock,
    key: bytes,
    public_url: str,
    user: DashboardUser,
    *,
    purpose: LinkPurpose = LinkPurpose.VERIFY_EMAIL,
) -> str:
    """A new link for the user's current address (24 hours to verify it, 1 hour to reset the
    password); its URL."""
    now = clock.now_ms()
    link = EmailLink(
        id=new_token("lnk_", 18),
        user_id=user.id,
        purpose=purpose,
        email=user.email,
        created_at_ms=now,
        expires_at_ms=now + LIFETIMES[purpose],
    )
    session.add(link)
    await session.flush()
    return link_url(public_url, key, link)


async def checked_link(
    session: AsyncSession,
    clock: Clock,
    key: bytes,
    token: str,
    *,
    purpose: LinkPurpose = LinkPurpose.VERIFY_EMAIL,
) -> EmailLink:
    """The link a token names, when its signature is right, it is for ``purpose`` (a
    verification link resets no password) and it is unused and unexpired."""
    link_id, _, signature = token.partition(".")
    link = await session.get(EmailLink, link_id) if link_id and signature else None
    if (
        link is None
        or not hmac.compare_digest(
            _signature(key, link).encode(), signature.encode("utf-8", "surrogateescape")
        )
        or link.purpose != purpose
    ):
        raise AccountError("this link is not valid", code="invalid_link")
    if link.used_at_ms is not None:
        raise AccountError("this link was used already", code="used_link")
    if clock.now_ms() >= link.expires_at_ms:
        raise AccountError("this link has expired", code="expired_link")
    return link


async def verify_email(
    session: AsyncSession, clock: Clock, key: bytes, token: str
) -> DashboardUser:
    """Use a verification link: the user's address is verified, the link spent."""
    link = await checked_link(session, clock, key, token)
    user = await session.get(DashboardUser, link.user_id)
    if user is None or user.email != link.email:
        raise AccountError("this link is not valid", code="invalid_link")
    now = clock.now_ms()
    await spend_link(session, link, now)
    if user.email_verified_at_ms is None:
        user.email_verified_at_ms = now
    await session.flush()
    return user


async def spend_link(session: AsyncSession, link: EmailLink, now_ms: int) -> None:
    """Mark the link used. Spent by whoever gets here first: a second use at the same moment
    finds no row to update and is refused."""
    spent = await session.execute(
        update(EmailLink)
        .where(EmailLink.id == link.id, EmailLink.used_at_ms.is_(None))
        .values(used_at_ms=now_ms)
        .execution_options(synchronize_session=False)
    )
    if getattr(spent, "rowcount", 0) != 1:
        raise AccountError("this link was used already", code="used_link")


async def latest_link_at(session: AsyncSession, user_id: str) -> int | None:
    return await session.scalar(
        select(EmailLink.created_at_ms)
        .where(EmailLink.user_id == user_id, EmailLink.purpose == LinkPurpose.VERIFY_EMAIL)
        .order_by(EmailLink.created_at_ms.desc())
        .limit(1)
    )


async def pending_links(
    session: AsyncSession, clock: Clock, key: bytes, public_url: str
) -> list[PendingLink]:
    """Every unused, unexpired link to a user's current address, oldest first: verification
    links of users not verified yet, and password reset links. What the operator hands out
    when there is no SMTP server."""
    rows = await session.execute(
        select(EmailLink, DashboardUser.merchant_id)
        .join(DashboardUser, DashboardUser.id == EmailLink.user_id)
        .where(
            EmailLink.used_at_ms.is_(None),
            EmailLink.expires_at_ms > clock.now_ms(),
            DashboardUser.email == EmailLink.email,
            or_(
                EmailLink.purpose == LinkPurpose.RESET_PASSWORD,
                DashboardUser.email_verified_at_ms.is_(None),
            ),
        )
        .order_by(EmailLink.created_at_ms, EmailLink.id)
    )
    return [
        PendingLink(
            email=link.email,
            merchant_id=merchant_id,
            purpose=str(link.purpose),
            url=link_url(public_url, key, link),
            expires_at_ms=link.expires_at_ms,
        )
        for link, merchant_id in rows.all()
    ]
