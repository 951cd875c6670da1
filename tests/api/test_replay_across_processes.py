"""One signed request is accepted once, whichever API process it reaches.

Two apps built from the same settings stand for two ``stablegate serve`` processes on one
database (SQLite file or PostgreSQL) without Redis: each has its own memory, so only a replay
cache in the shared database can tell that the second copy is a replay.
"""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.support import Signer

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.models import Order

CREATE = "/api/v1/payment/createQrOrder"


async def test_a_request_replayed_to_a_second_process_is_refused(
    app: FastAPI, settings: Settings, clock: FakeClock, signer: Signer
) -> None:
    other = create_app(settings, clock=clock, migrate=False)
    other_ctx: GatewayContext = other.state.gateway
    # No orderNo: every accepted copy would create one more order.
    body = json.dumps({"chainId": "31337", "symbol": "USDT", "amount": "12.5"}).encode()
    headers = signer.headers("POST", CREATE, body)
    try:
        for target, expected in ((app, 200), (other, 401)):
            transport = httpx.ASGITransport(app=target, client=("203.0.113.7", 40000))
            async with httpx.AsyncClient(
                transport=transport, base_url="https://pay.example.com"
            ) as c:
                response = await c.post(CREATE, content=body, headers=headers)
            assert response.status_code == expected, response.text
        assert response.json()["error"]["code"] == "replayed_request"
        async with session_scope(other_ctx.sessions) as session:
            assert await session.scalar(select(func.count()).select_from(Order)) == 1
    finally:
        await other_ctx.engine.dispose()


async def test_a_refused_order_leaves_no_claim_and_an_accepted_one_does(
    client: httpx.AsyncClient, gateway: GatewayContext, signer: Signer
) -> None:
    """The database claim is part of the order's transaction (docs/DESIGN.md §2, "Time rule and
    replay"): a request refused after authenticating took no effect, so the same request again
    gets the same answer, not ``replayed_request``; one that made an order is refused again."""
    refused = json.dumps({"chainId": "31337", "symbol": "USDT", "amount": "-1"}).encode()
    headers = signer.headers("POST", CREATE, refused)
    for _ in range(2):
        answer = await client.post(CREATE, content=refused, headers=headers)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_amount"

    made = json.dumps({"chainId": "31337", "symbol": "USDT", "amount": "3"}).encode()
    headers = signer.headers("POST", CREATE, made, window="30001")
    assert (await client.post(CREATE, content=made, headers=headers)).status_code == 200
    again = await client.post(CREATE, content=made, headers=headers)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed_request"
    async with session_scope(gateway.sessions) as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
