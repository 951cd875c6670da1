"""An order moved onto another chain long after its creation (the customer picked another
payment method) is watched there from its move on, and a transfer to its old deposit on the chain
it left is kept apart, never credited. SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from tests.chain_files import write_chains_file
from tests.support import NOW_MS, TEST_USDT, MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.chain.evm.transfers import TransferLog
from stablegate.clock import FakeClock
from stablegate.db.engine import read_scope, session_scope
from stablegate.models import Order, Payment
from stablegate.models.payment import PaymentKind
from stablegate.orders import queries
from stablegate.orders.repoint import repoint_order
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.payments.service import ObservedTransfer, classify, record_transfers, settle_orders
from stablegate.watcher.watched import REFRESH_OVERLAP_MS, WatchedAddresses

BSC_USDT = "0x55d398326f99059fF775485246999027B3197955"


@pytest.fixture
def chains_file(tmp_path: Path) -> Path:
    """The dev chain and a second chain (56), each with a USDT."""
    path = write_chains_file(tmp_path / "dev.toml", tokens=[("USDT", TEST_USDT, 6)])
    second = write_chains_file(
        tmp_path / "bsc.toml", chain_id=56, name="BNB Smart Chain", tokens=[("USDT", BSC_USDT, 18)]
    )
    path.write_text(path.read_text() + "\n" + second.read_text())
    return path


async def new_order(
    gateway: GatewayContext, clock: FakeClock, merchant_id: str, chain: int
) -> Order:
    req = CreateOrderRequest.model_validate(
        {"chainId": chain, "symbol": "USDT", "amount": "5", "expireSeconds": 3600}
    )
    async with session_scope(gateway.sessions) as session:
        order, _ = await create_order(
            session, clock, gateway.orders, merchant_id=merchant_id, req=req
        )
        session.expunge(order)
        return order


async def refreshed(gateway: GatewayContext, watched: WatchedAddresses, now_ms: int) -> None:
    async with read_scope(gateway.sessions) as session:
        await watched.refresh(session, now_ms)


async def test_an_order_moved_long_after_creation_is_watched_on_its_new_chain_only_credited_there(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    dev, bsc = WatchedAddresses(31337), WatchedAddresses(56)
    order = await new_order(gateway, clock, merchant.merchant_id, 31337)
    await refreshed(gateway, dev, clock.now_ms())
    await refreshed(gateway, bsc, clock.now_ms())
    assert dev.order_for(order.to_address) == order.id and len(bsc) == 0

    # Well past the overlap, with newer orders on chain 56 moving its high-water mark on.
    clock.advance((REFRESH_OVERLAP_MS + 60_000) / 1000)
    later = await new_order(gateway, clock, merchant.merchant_id, 56)
    await refreshed(gateway, bsc, clock.now_ms())
    assert bsc.order_for(later.to_address) == later.id
    clock.advance((REFRESH_OVERLAP_MS + 60_000) / 1000)
    async with session_scope(gateway.sessions) as session:
        locked = await queries.locked_order(session, order.id)
        assert locked is not None
        moved = await repoint_order(
            session, clock, gateway.orders, locked,
            chain_id=56, symbol="USDT", amount=Decimal("5"), currency=None,
        )  # fmt: skip
        session.expunge(moved)
    assert moved.create_time_ms == NOW_MS and moved.repoint_time_ms == clock.now_ms()
    assert (moved.chain_id, moved.decimals, moved.amount) == (56, 18, 5 * 10**18)

    clock.advance(1)
    await refreshed(gateway, bsc, clock.now_ms())
    assert bsc.order_for(moved.to_address) == order.id
    assert moved.to_address.lower() in bsc.lookup()

    # The dev chain's watcher still maps the old deposit: what arrives there is not a payment.
    await refreshed(gateway, dev, clock.now_ms())
    assert dev.order_for(order.to_address) == order.id
    chain = gateway.registry.require(31337)
    stray = TransferLog(
        token=TEST_USDT, sender="0x" + "11" * 20, recipient=order.to_address, amount=5_000_000,
        tx_hash="0x" + "ab" * 32, log_index=0, block_number=10, block_hash="0x" + "cd" * 32,
    )  # fmt: skip
    assert classify(chain, stray, moved) == PaymentKind.WRONG_CHAIN
    async with session_scope(gateway.sessions) as session:
        seen = await record_transfers(
            session,
            clock,
            chain,
            [ObservedTransfer(stray, 0, clock.now_ms(), order.id)],
            final_height=10,
        )
        assert seen == {order.id: {PaymentKind.WRONG_CHAIN}}
        await settle_orders(
            session,
            clock,
            gateway.orders,
            seen,
            final_time_ms=clock.now_ms(),
            newly_seen=seen,
        )
    async with session_scope(gateway.sessions) as session:
        after = await session.get(Order, order.id)
        assert after is not None
        assert (after.status, after.paid_amount, after.pending_amount) == ("pending", 0, 0)
        [payment] = await queries.order_payments(session, order.id)
        assert isinstance(payment, Payment) and payment.kind == PaymentKind.WRONG_CHAIN
        assert not payment.credited
