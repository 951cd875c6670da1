"""What the console reads about merchants: the searchable list (newest first, keyset pages of
50) and everything one merchant's page shows. Every query here is the operator's: no merchant
scoping, which is why nothing in this package is reachable without an operator session."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.errors import GatewayError
from stablegate.merchants.service import get_merchant
from stablegate.models import ApiKey, AuditEntry, DashboardUser, Merchant, Order
from stablegate.models.merchant import MerchantStatus, PayoutAddress

PAGE_SIZE = 50
MAX_QUERY = 200
RECENT_AUDIT = 25


class DirectoryError(GatewayError):
    """A list filter the console cannot read (400 ``invalid_filter``)."""

    status = 400
    code = "invalid_filter"


@dataclass(frozen=True)
class MerchantRow:
    merchant: Merchant
    owner_email: str | None


@dataclass(frozen=True)
class MerchantList:
    rows: list[MerchantRow]
    next_after: str | None  # the cursor of the next page, None on the last


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def parse_after(value: str) -> tuple[int, str] | None:
    """The keyset cursor ``<created ms>.<merchant id>``; anything else is ``invalid_filter``."""
    if not value:
        return None
    created, _, merchant_id = value.partition(".")
    if not created.isdigit() or len(created) > 15 or not merchant_id or len(merchant_id) > 40:
        raise DirectoryError("this page link is not valid")
    return int(created), merchant_id


async def search_merchants(
    session: AsyncSession, *, query: str = "", status: str = "", after: str = ""
) -> MerchantList:
    """Merchants whose id, name or an owner's email contains ``query`` (case-insensitive),
    optionally of one status, newest first."""
    query = query.strip()
    if len(query) > MAX_QUERY:
        raise DirectoryError(f"search for at most {MAX_QUERY} characters")
    if status and status not in {s.value for s in MerchantStatus}:
        raise DirectoryError("unknown status")
    cursor = parse_after(after)
    owner = (
        select(func.min(DashboardUser.email))
        .where(DashboardUser.merchant_id == Merchant.id)
        .correlate(Merchant)
        .scalar_subquery()
    )
    statement = select(Merchant, owner)
    if query:
        pattern = _like(query)
        owners = select(DashboardUser.merchant_id).where(
            func.lower(DashboardUser.email).like(pattern, escape="\\")
        )
        statement = statement.where(
            or_(
                func.lower(Merchant.id).like(pattern, escape="\\"),
                func.lower(Merchant.name).like(pattern, escape="\\"),
                Merchant.id.in_(owners),
            )
        )
    if status:
        statement = statement.where(Merchant.status == MerchantStatus(status))
    if cursor is not None:
        statement = statement.where(tuple_(Merchant.created_at_ms, Merchant.id) < cursor)
    statement = statement.order_by(Merchant.created_at_ms.desc(), Merchant.id.desc())
    found = (await session.execute(statement.limit(PAGE_SIZE + 1))).all()
    rows = [MerchantRow(merchant, email) for merchant, email in found[:PAGE_SIZE]]
    next_after = None
    if len(found) > PAGE_SIZE:
        last = rows[-1].merchant
        next_after = f"{last.created_at_ms}.{last.id}"
    return MerchantList(rows, next_after)


async def count_pending(session: AsyncSession) -> int:
    """Merchants waiting for approval (the console's menu shows the number)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Merchant)
            .where(Merchant.status == MerchantStatus.PENDING)
        )
        or 0
    )


@dataclass(frozen=True)
class MerchantFile:
    merchant: Merchant
    users: list[DashboardUser]
    payouts: dict[int, PayoutAddress]
    keys: list[ApiKey]
    orders_by_status: dict[str, int]
    audit: list[AuditEntry]


async def merchant_file(session: AsyncSession, merchant_id: str) -> MerchantFile:
    """One merchant's page: owners, payout addresses, API keys (never their secrets), order
    counts per status and the latest audit entries about it; ``not_found`` for an unknown id."""
    merchant = await get_merchant(session, merchant_id)
    users = (
        await session.scalars(
            select(DashboardUser)
            .where(DashboardUser.merchant_id == merchant_id)
            .order_by(DashboardUser.created_at_ms)
        )
    ).all()
    payouts = (
        await session.scalars(select(PayoutAddress).where(PayoutAddress.merchant_id == merchant_id))
    ).all()
    keys = (
        await session.scalars(
            select(ApiKey)
            .where(ApiKey.merchant_id == merchant_id)
            .order_by(ApiKey.created_at_ms.desc())
        )
    ).all()
    counts = (
        await session.execute(
            select(Order.status, func.count())
            .where(Order.merchant_id == merchant_id)
            .group_by(Order.status)
        )
    ).all()
    audit = (
        await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject == merchant_id)
            .order_by(AuditEntry.id.desc())
            .limit(RECENT_AUDIT)
        )
    ).all()
    return MerchantFile(
        merchant,
        list(users),
        {row.chain_id: row for row in payouts},
        list(keys),
        {str(status): int(count) for status, count in counts},
        list(audit),
    )
