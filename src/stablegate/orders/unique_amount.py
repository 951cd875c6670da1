"""The `unique_amount` deposit strategy (docs/DESIGN.md §5), per merchant.

The payout address itself receives. Each order's amount carries a unique offset in the
token's last shown digits (1 to 9999 millionths of a token), reserved for 30 days so a late
transfer can still only mean one order. Transfers matching no reservation are `unattributed`.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.errors import Conflict
from stablegate.models import AmountOffset

RESERVATION_MS = 30 * 86_400_000
MAX_OFFSET = 9999
RANDOM_TRIES = 16


def offset_unit(decimals: int) -> int:
    """Base units of one millionth of a token (or one base unit for coarser tokens)."""
    unit: int = 10 ** max(decimals - 6, 0)
    return unit


async def reserve_amount(
    session: AsyncSession,
    *,
    chain_id: int,
    token: str,
    address: str,
    base_amount: int,
    decimals: int,
    order_id: str,
    now_ms: int,
) -> int:
    """Reserve ``base_amount`` + a free offset for the order; 409 ``no_free_offset`` if none."""
    unit = offset_unit(decimals)
    candidates = [secrets.randbelow(MAX_OFFSET) + 1 for _ in range(RANDOM_TRIES)]
    for offset in candidates:
        if await _try(
            session, chain_id, token, address, base_amount + offset * unit, order_id, now_ms
        ):
            return base_amount + offset * unit
    # Crowded: look for any offset whose reservation is free or lapsed.
    taken = set(
        (
            await session.scalars(
                select(AmountOffset.amount).where(
                    AmountOffset.chain_id == chain_id,
                    AmountOffset.token_address == token,
                    AmountOffset.address == address,
                    AmountOffset.amount > base_amount,
                    AmountOffset.amount <= base_amount + MAX_OFFSET * unit,
                    AmountOffset.reserved_until_ms > now_ms,
                )
            )
        ).all()
    )
    for offset in range(1, MAX_OFFSET + 1):
        amount = base_amount + offset * unit
        if amount not in taken and await _try(
            session, chain_id, token, address, amount, order_id, now_ms
        ):
            return amount
    raise Conflict(
        "every amount offset for this amount is reserved; try another amount later",
        code="no_free_offset",
    )


async def _try(
    session: AsyncSession,
    chain_id: int,
    token: str,
    address: str,
    amount: int,
    order_id: str,
    now_ms: int,
) -> bool:
    existing = await session.scalar(
        select(AmountOffset)
        .where(
            AmountOffset.chain_id == chain_id,
            AmountOffset.token_address == token,
            AmountOffset.address == address,
            AmountOffset.amount == amount,
        )
        .with_for_update()
    )
    if existing is not None:
        if existing.reserved_until_ms > now_ms:
            return False
        existing.order_id = order_id  # a lapsed reservation is taken over
        existing.reserved_until_ms = now_ms + RESERVATION_MS
        await session.flush()
        return True
    try:
        async with session.begin_nested():
            session.add(
                AmountOffset(
                    chain_id=chain_id,
                    token_address=token,
                    address=address,
                    amount=amount,
                    order_id=order_id,
                    reserved_until_ms=now_ms + RESERVATION_MS,
                )
            )
            await session.flush()
    except IntegrityError:
        return False  # reserved concurrently by another request
    return True
