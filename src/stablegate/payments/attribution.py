"""Which order a transfer belongs to (docs/DESIGN.md §4, §5).

A transfer to (or out of) a deposit contract belongs to that deposit's order. A transfer to a
pooled payout address of a ``unique_amount`` merchant belongs to the order whose reserved amount
it matches exactly, or to none (it is recorded ``unattributed``); a transfer into such an
address from one of our own deposit contracts is a sweep, not a payment, and is left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.evm.transfers import TransferLog
from stablegate.models import AmountOffset, Order
from stablegate.models.merchant import DepositStrategy


class WatchedAddresses(Protocol):
    """What the watcher knows about the addresses it watches."""

    def order_for(self, address: str) -> str | None:
        """The order of the deposit contract at ``address``."""
        ...

    def is_pooled(self, address: str) -> bool:
        """Is ``address`` a payout address shared by ``unique_amount`` orders?"""
        ...


@dataclass(frozen=True)
class AttributedTransfer:
    transfer: TransferLog
    order_id: str | None  # None: unattributed


async def attribute(
    session: AsyncSession,
    *,
    chain_id: int,
    watched: WatchedAddresses,
    transfers: Iterable[TransferLog],
) -> list[AttributedTransfer]:
    """Each transfer with its order, in the given order; sweeps into pooled payout addresses
    are left out."""
    attributed: list[AttributedTransfer] = []
    for transfer in transfers:
        # To a deposit: a payment; else out of one: its flush (payments.service.classify).
        order_id = watched.order_for(transfer.recipient) or watched.order_for(transfer.sender)
        if order_id is None and watched.is_pooled(transfer.recipient):
            if await is_deposit_contract(session, chain_id, transfer.sender):
                continue  # a sweep into the payout address, not a payment
            order_id = await order_for_amount(
                session,
                chain_id=chain_id,
                token=transfer.token,
                address=transfer.recipient,
                amount=transfer.amount,
            )
        attributed.append(AttributedTransfer(transfer=transfer, order_id=order_id))
    return attributed


async def is_deposit_contract(session: AsyncSession, chain_id: int, address: str) -> bool:
    """Transfers out of our own deposit contracts (sweeps to a payout) are not payments."""
    found = await session.scalar(
        select(Order.id)
        .where(
            Order.chain_id == chain_id,
            Order.to_address == address,
            Order.deposit_strategy == DepositStrategy.FORWARDER,
        )
        .limit(1)
    )
    return found is not None


async def order_for_amount(
    session: AsyncSession, *, chain_id: int, token: str, address: str, amount: int
) -> str | None:
    """The order whose reserved amount a transfer to a pooled payout address matches."""
    return await session.scalar(
        select(AmountOffset.order_id).where(
            AmountOffset.chain_id == chain_id,
            AmountOffset.token_address == token,
            AmountOffset.address == address,
            AmountOffset.amount == amount,
        )
    )
