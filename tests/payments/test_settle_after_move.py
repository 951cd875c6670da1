"""A credit the watcher classified against an order as it was before the customer's pick moved
it (its transaction read the order unlocked while the pick committed) is not counted: settlement
reads the order afresh under its lock and keeps such a transfer apart."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.support import NOW_MS, TEST_USDT, MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import Order, Payment
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.orders import queries
from stablegate.orders.repoint import repoint_order
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.payments.service import settle_orders


async def new_order(gateway: GatewayContext, clock: FakeClock, merchant_id: str) -> Order:
    req = CreateOrderRequest.model_validate({"chainId": 31337, "symbol": "USDT", "amount": "5"})
    async with session_scope(gateway.sessions) as session:
        order, _ = await create_order(
            session, clock, gateway.orders, merchant_id=merchant_id, req=req
        )
        session.expunge(order)
        return order


async def move_to_usdt18(gateway: GatewayContext, clock: FakeClock, order_id: str) -> None:
    async with session_scope(gateway.sessions) as session:
        locked = await queries.locked_order(session, order_id)
        assert locked is not None
        await repoint_order(
            session, clock, gateway.orders, locked,
            chain_id=31337, symbol="USDT18", amount=Decimal("5"), currency=None,
        )  # fmt: skip


def old_token_credit(order: Order) -> Payment:
    """Five USDT to the deposit, classified a credit against the order still in USDT."""
    return Payment(
        chain_id=31337, tx_hash="0x" + "ab" * 32, log_position=0, log_index=0, block_number=10,
        block_hash="0x" + "cd" * 32, block_time_ms=NOW_MS, token_address=TEST_USDT,
        from_address="0x" + "11" * 20, to_address=order.to_address, amount=5_000_000,
        order_id=order.id, status=PaymentStatus.FINAL, kind=PaymentKind.CREDIT, late=False,
        credited=False, created_at_ms=NOW_MS, updated_at_ms=NOW_MS,
    )  # fmt: skip


async def test_a_credit_of_the_token_the_order_left_is_kept_apart(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    order = await new_order(gateway, clock, merchant.merchant_id)
    await move_to_usdt18(gateway, clock, order.id)
    async with session_scope(gateway.sessions) as session:
        session.add(old_token_credit(order))
        await session.flush()
        seen = {order.id: {PaymentKind.CREDIT.value}}
        await settle_orders(
            session, clock, gateway.orders, [order.id], final_time_ms=NOW_MS, newly_seen=seen
        )
    async with session_scope(gateway.sessions) as session:
        after = await session.get(Order, order.id)
        assert after is not None
        assert (after.symbol, after.status, after.paid_amount, after.pending_amount) == (
            "USDT18",
            "pending",
            0,
            0,
        )
        [payment] = await queries.order_payments(session, order.id)
        assert payment.kind == PaymentKind.WRONG_TOKEN and not payment.credited


async def test_settlement_reads_the_order_afresh_after_a_pick_committed_meanwhile(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    if gateway.settings.is_embedded:
        pytest.skip("SQLite runs one writer at a time: the interleaving cannot happen there")
    order = await new_order(gateway, clock, merchant.merchant_id)
    async with session_scope(gateway.sessions) as watcher:
        # The watcher's step reads the order unlocked (as record_transfers does) ...
        stale = await watcher.get(Order, order.id)
        assert stale is not None and stale.symbol == "USDT"
        # ... the customer's pick commits meanwhile ...
        await move_to_usdt18(gateway, clock, order.id)
        # ... and the step records its transfer as a USDT credit, then settles.
        watcher.add(old_token_credit(order))
        await watcher.flush()
        seen = {order.id: {PaymentKind.CREDIT.value}}
        await settle_orders(
            watcher, clock, gateway.orders, [order.id], final_time_ms=NOW_MS, newly_seen=seen
        )
        assert stale.symbol == "USDT18"  # the lock read refreshed the session's object
    async with session_scope(gateway.sessions) as session:
        after = await session.get(Order, order.id)
        assert after is not None and (after.paid_amount, after.pending_amount) == (0, 0)
