"""An API key's last use: written when a request authenticates with it, at most once a minute
per key (most requests run no statement for it), never by a refused request, and a failed
write never fails the request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event, select
from tests.support import MerchantKeys, Signer

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.key_use import KeyUseRecorder
from stablegate.models import ApiKey

CREATE = "/api/v1/payment/createQrOrder"
QUERY = "/api/v1/payment/contractPayment"


@contextmanager
def statements(gateway: GatewayContext) -> Iterator[list[str]]:
    """Every SQL statement the app sends while inside."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = gateway.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _updates(seen: list[str]) -> list[str]:
    return [s for s in seen if s.lstrip().upper().startswith("UPDATE API_KEYS")]


async def _create(client: httpx.AsyncClient, signer: Signer, order_no: str) -> httpx.Response:
    body = json.dumps(
        {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": order_no}
    ).encode()
    return await client.post(CREATE, content=body, headers=signer.headers("POST", CREATE, body))


async def _stored_last_use(gateway: GatewayContext, merchant: MerchantKeys) -> int | None:
    async with session_scope(gateway.sessions) as session:
        return await session.scalar(
            select(ApiKey.last_used_at_ms).where(ApiKey.merchant_id == merchant.merchant_id)
        )


async def test_the_last_use_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    signer: Signer,
) -> None:
    assert await _stored_last_use(gateway, merchant) is None
    start = clock.now_ms()
    with statements(gateway) as seen:
        assert (await _create(client, signer, "a")).status_code == 200
    assert len(_updates(seen)) == 1
    assert await _stored_last_use(gateway, merchant) == start

    # Within the minute: signed creations and reads with the key alone run no statement for it.
    for n in range(5):
        clock.advance(10)
        with statements(gateway) as seen:
            assert (await _create(client, signer, f"b{n}")).status_code == 200
            read = await client.get(QUERY, headers={"BlockATM-API-Key": merchant.api_key})
            assert read.status_code == 200
        assert _updates(seen) == [], n
    assert await _stored_last_use(gateway, merchant) == start

    clock.advance(10)  # a minute since the write
    with statements(gateway) as seen:
        assert (await _create(client, signer, "c")).status_code == 200
    assert len(_updates(seen)) == 1
    assert await _stored_last_use(gateway, merchant) == start + 60_000
    assert gateway.key_use.writes == 2


async def test_a_refused_request_is_not_a_use(
    client: httpx.AsyncClient, gateway: GatewayContext, merchant: MerchantKeys, signer: Signer
) -> None:
    headers = signer.headers("GET", QUERY)
    headers["BlockATM-Signature-V2"] = "0" * 64
    assert (await client.get(QUERY, headers=headers)).status_code == 401
    assert await _stored_last_use(gateway, merchant) is None
    assert gateway.key_use.writes == 0


@contextmanager
def failing_last_use_writes(gateway: GatewayContext) -> Iterator[None]:
    """The database refuses every write of a key's last use (the statement it gets is invalid),
    inside the request's own transaction or not."""

    def broken(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> Any:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS SET LAST_USED_AT_MS"):
            return "UPDATE api_keys SET no_such_column = 1", params
        return statement, params

    engine = gateway.engine.sync_engine
    event.listen(engine, "before_cursor_execute", broken, retval=True)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", broken)


async def test_a_failed_write_does_not_fail_the_request(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    signer: Signer,
) -> None:
    with failing_last_use_writes(gateway):
        created = await _create(client, signer, "still-works")
    # The order's transaction went on past the failed write: the order is there.
    assert created.status_code == 200, created.text
    assert (
        await client.get(
            QUERY,
            params={"orderNo": "still-works"},
            headers=signer.headers("GET", QUERY, query="orderNo=still-works"),
        )
    ).status_code == 200
    assert gateway.key_use.writes == 1
    assert await _stored_last_use(gateway, merchant) is None
    # Not retried at once (a failing database is not hammered), but a minute later.
    assert (await _create(client, signer, "soon")).status_code == 200
    assert await _stored_last_use(gateway, merchant) is None
    clock.advance(60)
    assert (await _create(client, signer, "later")).status_code == 200
    assert await _stored_last_use(gateway, merchant) == clock.now_ms()


def test_the_memo_is_per_key_and_follows_a_clock_set_back() -> None:
    recorder = KeyUseRecorder()
    assert recorder.due("key_a", 1_000_000)
    recorder._written["key_a"] = 1_000_000
    assert not recorder.due("key_a", 1_000_000 + 59_999)
    assert recorder.due("key_a", 1_000_000 + 60_000)
    assert recorder.due("key_b", 1_000_000)
    assert recorder.due("key_a", 999_000)  # the clock went back: write again
