"""The merchants service (creating a merchant) and its payout addresses (changing one) run the
payout code check wherever a payout address is set, so the CLI and any later caller (the
dashboard) get the same refusal."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.support import PAYOUT, MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError
from stablegate.merchants import payout_addresses, service
from stablegate.merchants.payout_check import CodePresence, PayoutCodeCheck
from stablegate.models import Merchant, PayoutAddress

SAFE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # a contract on 31337 only


class Chains:
    """Answers for SAFE: code on 31337, none on 56; every other address is a plain account."""

    def __init__(self) -> None:
        self.asked: list[tuple[list[int], str]] = []

    async def read_code(self, chain_ids: list[int], address: str) -> CodePresence:
        self.asked.append((sorted(chain_ids), address))
        return {chain_id: address == SAFE and chain_id == 31337 for chain_id in chain_ids}

    def check(self, *, force: bool = False) -> PayoutCodeCheck:
        return PayoutCodeCheck(read_code=self.read_code, force=force)


async def payouts(gateway: GatewayContext, merchant_id: str) -> dict[int, str]:
    async with session_scope(gateway.sessions) as session:
        rows = await session.scalars(
            select(PayoutAddress).where(PayoutAddress.merchant_id == merchant_id)
        )
        return {row.chain_id: row.address for row in rows}


async def test_create_merchant_refuses_a_mixed_payout_address_unless_forced(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    chains = Chains()

    async def create(name: str, *, force: bool) -> service.NewMerchant:
        async with session_scope(gateway.sessions) as session:
            return await service.create_merchant(
                session,
                gateway.secret_box,
                clock,
                name=name,
                payout_address=SAFE.lower(),
                chain_ids=[31337, 56],
                payout_code=chains.check(force=force),
            )

    with pytest.raises(GatewayError) as refused:
        await create("Refused", force=False)
    assert refused.value.code == "payout_code_mismatch"
    assert chains.asked == [([56, 31337], SAFE)]
    async with session_scope(gateway.sessions) as session:
        assert await session.scalar(select(Merchant).where(Merchant.name == "Refused")) is None

    created = await create("Forced", force=True)
    assert created.payout_warning is not None and "[31337]" in created.payout_warning
    assert await payouts(gateway, created.merchant_id) == {31337: SAFE, 56: SAFE}


async def test_set_payout_address_checks_every_chain_paying_to_that_address(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    chains = Chains()

    async def set_payout(chain_id: int, address: str, *, force: bool = False) -> str | None:
        async with session_scope(gateway.sessions) as session:
            result = await payout_addresses.set_payout_address(
                session,
                clock,
                merchant_id=merchant.merchant_id,
                chain_id=chain_id,
                address=address,
                payout_code=chains.check(force=force),
            )
        assert result.address == address
        return result.warning

    # Only 31337 pays to SAFE: code there and nowhere else asked, nothing to compare.
    assert await set_payout(31337, SAFE) is None
    assert chains.asked[-1] == ([31337], SAFE)
    # 56 joins SAFE: both chains are asked, and they disagree.
    with pytest.raises(GatewayError) as refused:
        await set_payout(56, SAFE)
    assert refused.value.code == "payout_code_mismatch"
    assert chains.asked[-1] == ([56, 31337], SAFE)
    assert await payouts(gateway, merchant.merchant_id) == {31337: SAFE, 56: PAYOUT}

    assert await set_payout(56, SAFE, force=True) is not None
    assert await payouts(gateway, merchant.merchant_id) == {31337: SAFE, 56: SAFE}
    assert await set_payout(56, PAYOUT) is None
