"""What a new order of a merchant is made with: its deposit strategy and payout addresses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.models import Merchant, PayoutAddress
from stablegate.models.merchant import DepositStrategy


@dataclass(frozen=True)
class MerchantTerms:
    deposit_strategy: DepositStrategy
    payout_addresses: Mapping[int, str]  # chain id -> the merchant's address there


async def load_terms(session: AsyncSession, merchant_id: str) -> MerchantTerms | None:
    """The merchant's terms as stored now; None when there is no such merchant."""
    strategy = await session.scalar(
        select(Merchant.deposit_strategy).where(Merchant.id == merchant_id)
    )
    if strategy is None:
        return None
    rows = await session.execute(
        select(PayoutAddress.chain_id, PayoutAddress.address).where(
            PayoutAddress.merchant_id == merchant_id
        )
    )
    return MerchantTerms(
        deposit_strategy=DepositStrategy(strategy),
        payout_addresses={chain_id: address for chain_id, address in rows.all()},
    )
