"""The chain a compatibility credential's orders are paid on when its format names none."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.errors import InvalidRequest
from stablegate.models import PayoutAddress


async def payment_chain(
    session: AsyncSession, registry: ChainRegistry, merchant_id: str, chain_id: int | None
) -> int:
    """The chain asked for, else the merchant's one payout chain."""
    if chain_id is not None:
        return registry.require(chain_id).id
    chains = (
        await session.scalars(
            select(PayoutAddress.chain_id).where(PayoutAddress.merchant_id == merchant_id)
        )
    ).all()
    if len(chains) != 1:
        raise InvalidRequest(
            "the merchant is paid out on "
            + (f"{len(chains)} chains" if chains else "no chain")
            + ": name the chain the orders are paid on (--chain)",
            code="invalid_request",
        )
    return registry.require(chains[0]).id
