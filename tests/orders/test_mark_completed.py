"""The operator's manual completion: pending or expired only, audited, emits order.completed."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.errors import Conflict, InvalidRequest
from stablegate.models import AuditEntry, Order, WebhookEvent
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order, mark_completed


async def test_mark_completed_is_audited(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    req = CreateOrderRequest.model_validate({"chainId": 31337, "symbol": "USDT", "amount": "1"})
    async with session_scope(gateway.sessions) as session:
        order, _ = await create_order(
            session, clock, gateway.orders, merchant_id=merchant.merchant_id, req=req
        )
    async with session_scope(gateway.sessions) as session:
        with pytest.raises(InvalidRequest):
            await mark_completed(
                session, clock, gateway.orders, order_id=order.id, actor="", reason="x"
            )
    async with session_scope(gateway.sessions) as session:
        done = await mark_completed(
            session,
            clock,
            gateway.orders,
            order_id=order.id,
            actor="ops@shop",
            reason="paid by bank transfer",
        )
        assert done.status == "completed" and done.exceptions == ["manual"]
    async with session_scope(gateway.sessions) as session:
        with pytest.raises(Conflict):
            await mark_completed(
                session, clock, gateway.orders, order_id=order.id, actor="a", reason="again"
            )
    async with session_scope(gateway.sessions) as session:
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.subject == order.id))
        ).one()
        assert audit.actor == "ops@shop" and audit.details["reason"] == "paid by bank transfer"
        events = (
            await session.scalars(
                select(WebhookEvent.type).where(WebhookEvent.order_id == order.id)
            )
        ).all()
        assert list(events) == ["order.created", "order.completed"]
        assert (await session.get(Order, order.id)) is not None
