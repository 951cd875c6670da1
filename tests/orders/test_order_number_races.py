"""Concurrent creations with one orderNo: exactly one order and one ``order.created`` event,
every same-field request answered with that order, every other one 409 (on PostgreSQL the
requests run in concurrent transactions; the signed API inserts without looking first)."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlalchemy import func, select
from tests.support import MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.db.engine import read_scope
from stablegate.models import Order, WebhookEvent

CREATE = "/api/v1/payment/createQrOrder"
RACERS = 12


async def _create(client: httpx.AsyncClient, signer: Signer, amount: str, n: int) -> httpx.Response:
    body = json.dumps(
        {"chainId": "31337", "symbol": "USDT", "amount": amount, "orderNo": "raced"}
    ).encode()
    # Each request its own receive window: its own signing string, so none is a replay.
    headers = signer.headers("POST", CREATE, body, window=str(30_000 + n))
    return await client.post(CREATE, content=body, headers=headers)


async def _stored(gateway: GatewayContext, merchant: MerchantKeys) -> tuple[int, int]:
    async with read_scope(gateway.sessions) as session:
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.merchant_id == merchant.merchant_id)
        )
        events = await session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.merchant_id == merchant.merchant_id)
        )
    return int(orders or 0), int(events or 0)


async def test_same_fields_make_one_order(
    client: httpx.AsyncClient, gateway: GatewayContext, merchant: MerchantKeys, signer: Signer
) -> None:
    answers = await asyncio.gather(*(_create(client, signer, "5", n) for n in range(RACERS)))
    assert [a.status_code for a in answers] == [200] * RACERS, [a.text for a in answers]
    assert len({a.json()["orderId"] for a in answers}) == 1
    assert await _stored(gateway, merchant) == (1, 1)


async def test_other_fields_are_a_conflict_and_make_nothing(
    client: httpx.AsyncClient, gateway: GatewayContext, merchant: MerchantKeys, signer: Signer
) -> None:
    answers = await asyncio.gather(
        *(_create(client, signer, "5" if n % 2 else "6", n) for n in range(RACERS))
    )
    made = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 409]
    assert len(made) + len(refused) == RACERS, [a.text for a in answers]
    assert {a.json()["error"]["code"] for a in refused} == {"order_conflict"}
    # Every request that got the order asked for the amount it has.
    assert len({(a.json()["orderId"], a.json()["amount"]) for a in made}) == 1
    assert len(refused) == RACERS // 2
    assert await _stored(gateway, merchant) == (1, 1)
