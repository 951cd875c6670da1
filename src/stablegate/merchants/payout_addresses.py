"""A merchant's payout addresses, one per chain: where its orders pay out. Setting one runs
the payout code check (:mod:`stablegate.merchants.payout_check`) and is audited; only orders
created afterwards use it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.errors import InvalidRequest
from stablegate.merchants.payout_check import PayoutCodeCheck
from stablegate.merchants.service import checksum_address, get_merchant
from stablegate.models import AuditEntry, PayoutAddress


@dataclass(frozen=True)
class PayoutAddressSet:
    address: str  # checksummed
    warning: str | None  # the payout code check's warning, overridden with --force


def check_known_chains(registry: ChainRegistry, chain_ids: list[int]) -> None:
    """A payout address only for chains the registry (built-in plus chains file) knows: an
    unknown id is a typo, and orders could never be created on it."""
    unknown = sorted({chain_id for chain_id in chain_ids if registry.get(chain_id) is None})
    if unknown:
        known = ", ".join(str(chain.id) for chain in registry)
        raise InvalidRequest(
            f"chain(s) {unknown} are not in the chain registry (known: {known});"
            " add them to the chains file first",
            code="unknown_chain",
        )


async def set_payout_address(
    session: AsyncSession,
    clock: Clock,
    *,
    merchant_id: str,
    chain_id: int,
    address: str,
    payout_code: PayoutCodeCheck,
    actor: str = "cli",
) -> PayoutAddressSet:
    """Change a payout address; only orders created afterwards use it (audited). The code
    check covers this chain and every other chain where the merchant already pays out to
    the same address."""
    checksummed = checksum_address(address)
    await get_merchant(session, merchant_id)  # before asking any chain
    others = await payout_chains(session, merchant_id, checksummed)
    warning = await payout_code.run(sorted({chain_id, *others}), checksummed)
    row = await session.get(PayoutAddress, (merchant_id, chain_id))
    previous = row.address if row else None
    if row is None:
        session.add(
            PayoutAddress(
                merchant_id=merchant_id,
                chain_id=chain_id,
                address=checksummed,
                updated_at_ms=clock.now_ms(),
            )
        )
    else:
        row.address = checksummed
        row.updated_at_ms = clock.now_ms()
    session.add(
        AuditEntry(
            at_ms=clock.now_ms(),
            actor=actor,
            action="payout_address.set",
            subject=merchant_id,
            details={"chainId": chain_id, "from": previous, "to": checksummed},
        )
    )
    await session.flush()
    return PayoutAddressSet(address=checksummed, warning=warning)


async def has_payout_address(session: AsyncSession, merchant_id: str) -> bool:
    """Whether orders can be made at all: a dashboard sign-up has no payout address yet."""
    found = await session.scalar(
        select(PayoutAddress.chain_id).where(PayoutAddress.merchant_id == merchant_id).limit(1)
    )
    return found is not None


async def payout_chains(session: AsyncSession, merchant_id: str, address: str) -> list[int]:
    """Chains where the merchant already pays out to this address."""
    rows = await session.scalars(
        select(PayoutAddress.chain_id).where(
            PayoutAddress.merchant_id == merchant_id,
            PayoutAddress.address == checksum_address(address),
        )
    )
    return list(rows.all())
