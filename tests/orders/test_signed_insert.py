"""A signed order written at once outside a session transaction: one statement on PostgreSQL
(stablegate.orders.signed_insert), one transaction in one hop to a thread on SQLite
(stablegate.orders.signed_insert_sqlite). Every guard of the write, on both, and the API taking
that way once the key's credentials are cached.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from tests.service_urls import REDIS_URL
from tests.support import MerchantKeys, Signer, credential_epoch, replay_claim

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.merchants.terms import load_terms
from stablegate.models import Order, ReplayKey, WebhookEvent
from stablegate.orders import service
from stablegate.orders.insert_guard import ConfirmedRefusal, InsertGuard, StaleCredentials
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.view import order_view

CREATE = "/api/v1/payment/createQrOrder"


async def _counts(gateway: GatewayContext) -> tuple[int, int, int]:
    async with session_scope(gateway.sessions) as session:
        orders = await session.scalar(select(func.count()).select_from(Order))
        events = await session.scalar(select(func.count()).select_from(WebhookEvent))
        claims = await session.scalar(select(func.count()).select_from(ReplayKey))
    return int(orders or 0), int(events or 0), int(claims or 0)


async def _create(
    gateway: GatewayContext, merchant: MerchantKeys, guard: InsertGuard, order_no: str = "n-1"
) -> tuple[Order, bool]:
    async with session_scope(gateway.sessions) as session:
        terms = await load_terms(session, merchant.merchant_id)
    assert terms is not None
    req = CreateOrderRequest.model_validate(
        {"chainId": "31337", "symbol": "USDT", "amount": "2", "orderNo": order_no}
    )
    async with session_scope(gateway.sessions) as session:
        return await service.create_order(
            session,
            gateway.clock,
            gateway.orders,
            merchant_id=merchant.merchant_id,
            req=req,
            terms=terms,
            detached=True,
            guard=guard,
        )


async def test_the_order_its_event_and_the_claim_are_written_together(
    gateway: GatewayContext, merchant: MerchantKeys, clock: FakeClock
) -> None:
    guard = InsertGuard(await credential_epoch(gateway), replay_claim(clock))
    order, created = await _create(gateway, merchant, guard)
    assert created
    assert await _counts(gateway) == (1, 1, 1)
    async with session_scope(gateway.sessions) as session:
        stored = await session.get(Order, order.id)
        event = await session.scalar(select(WebhookEvent))
    assert stored is not None and stored.amount == 2_000_000 and stored.event_sequence == 1
    assert event is not None and event.order_id == order.id and event.deliverable
    assert event.payload["data"]["orderId"] == order.id


async def test_credentials_changed_since_they_were_cached_write_nothing(
    gateway: GatewayContext, merchant: MerchantKeys, clock: FakeClock
) -> None:
    guard = InsertGuard(await credential_epoch(gateway) - 1, replay_claim(clock))
    with pytest.raises(StaleCredentials):
        await _create(gateway, merchant, guard)
    assert await _counts(gateway) == (0, 0, 0)  # not even the claim


async def test_a_live_claim_is_a_replay_and_writes_nothing(
    gateway: GatewayContext, merchant: MerchantKeys, clock: FakeClock
) -> None:
    epoch = await credential_epoch(gateway)
    await _create(gateway, merchant, InsertGuard(epoch, replay_claim(clock)), "first")
    with pytest.raises(ConfirmedRefusal) as refused:
        await _create(gateway, merchant, InsertGuard(epoch, replay_claim(clock)), "second")
    assert refused.value.error.code == "replayed_request"
    assert await _counts(gateway) == (1, 1, 1)


async def test_an_expired_claim_is_taken_over(
    gateway: GatewayContext, merchant: MerchantKeys, clock: FakeClock
) -> None:
    epoch = await credential_epoch(gateway)
    await _create(gateway, merchant, InsertGuard(epoch, replay_claim(clock)), "first")
    clock.advance(61_001)
    _, created = await _create(gateway, merchant, InsertGuard(epoch, replay_claim(clock)), "second")
    assert created
    assert await _counts(gateway) == (2, 2, 1)


async def test_a_repeated_order_number_keeps_its_claim_and_adds_no_event(
    gateway: GatewayContext, merchant: MerchantKeys, clock: FakeClock
) -> None:
    epoch = await credential_epoch(gateway)
    first, _ = await _create(gateway, merchant, InsertGuard(epoch, replay_claim(clock, "a" * 64)))
    again, created = await _create(
        gateway, merchant, InsertGuard(epoch, replay_claim(clock, "b" * 64))
    )
    assert not created and again.id == first.id
    assert await _counts(gateway) == (1, 1, 2)


async def test_without_a_claim_the_epoch_alone_guards_the_order(
    gateway: GatewayContext, merchant: MerchantKeys
) -> None:
    epoch = await credential_epoch(gateway)
    with pytest.raises(StaleCredentials):
        await _create(gateway, merchant, InsertGuard(epoch + 1, None), "stale")
    _, created = await _create(gateway, merchant, InsertGuard(epoch, None), "current")
    assert created
    assert await _counts(gateway) == (1, 1, 0)


def _count_statements(gateway: GatewayContext, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    writer = gateway.signed_orders
    assert writer is not None
    outcomes: list[Any] = []
    original: Callable[..., Awaitable[Any]] = writer.insert

    async def counted(*args: Any, **kwargs: Any) -> Any:
        outcome = await original(*args, **kwargs)
        outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(writer, "insert", counted)
    return outcomes


def _order_body(order_no: str, **extra: str) -> bytes:
    fields = {"chainId": "31337", "symbol": "USDT", "amount": "1", "orderNo": order_no, **extra}
    return json.dumps(fields).encode()


async def test_orders_of_a_cached_key_take_one_statement(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes = _count_statements(gateway, monkeypatch)
    for n in range(3):
        body = _order_body(f"o{n}")
        answer = await client.post(
            CREATE, content=body, headers=signer.headers("POST", CREATE, body)
        )
        assert answer.status_code == 200, answer.text
    # The first request loads the key in a transaction; the next two are one statement each.
    assert len(outcomes) == 2 and all(o.order_id for o in outcomes)
    assert gateway.credential_cache.loads == 1
    assert await _counts(gateway) == (3, 3, 3)


async def test_a_replay_on_the_one_statement_path_is_refused_and_counted(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes = _count_statements(gateway, monkeypatch)
    warm = _order_body("warm")
    assert (
        await client.post(CREATE, content=warm, headers=signer.headers("POST", CREATE, warm))
    ).status_code == 200
    body = _order_body("once")
    headers = signer.headers("POST", CREATE, body)
    assert (await client.post(CREATE, content=body, headers=headers)).status_code == 200
    failures = gateway.metrics.auth_failures.labels("replayed_request")._value.get()
    again = await client.post(CREATE, content=body, headers=headers)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed_request"
    assert gateway.metrics.auth_failures.labels("replayed_request")._value.get() == failures + 1
    assert [o.claimed for o in outcomes] == [True, False]
    assert await _counts(gateway) == (2, 2, 2)


async def test_a_fiat_order_of_a_cached_key_is_made_in_a_transaction(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Priced in a currency, an order needs a rate: checked again and made in a transaction,
    its request counted once against the key's limit."""
    outcomes = _count_statements(gateway, monkeypatch)
    warm = _order_body("warm")
    assert (
        await client.post(CREATE, content=warm, headers=signer.headers("POST", CREATE, warm))
    ).status_code == 200
    body = _order_body("fiat", currency="XTS")
    answer = await client.post(CREATE, content=body, headers=signer.headers("POST", CREATE, body))
    # XTS (ISO 4217's code for testing) has no rate: the transaction path answers for it.
    assert answer.status_code in (400, 503), answer.text
    assert outcomes == []
    remaining = int(answer.headers["X-RateLimit-Remaining"])
    body = _order_body("after")
    after = await client.post(CREATE, content=body, headers=signer.headers("POST", CREATE, body))
    assert int(after.headers["X-RateLimit-Remaining"]) == remaining - 1


async def test_with_redis_a_request_checked_again_is_not_its_own_replay(
    settings: Settings, clock: FakeClock, merchant: MerchantKeys, signer: Signer
) -> None:
    """Redis takes the replay claim while the cached credentials are checked; when the statement
    then finds them out of date, the second check must not take that claim again."""
    app = create_app(settings.model_copy(update={"redis_url": REDIS_URL}), clock=clock)
    ctx: GatewayContext = app.state.gateway
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://pay.example.com") as c:
            for order_no in ("warm-1", "warm-2"):
                body = _order_body(order_no)
                headers = signer.headers("POST", CREATE, body)
                assert (await c.post(CREATE, content=body, headers=headers)).status_code == 200
            async with session_scope(ctx.sessions) as session:
                # A change that leaves the key able to sign orders still moves the epoch.
                await session.execute(
                    text("UPDATE api_keys SET signed_reads = true WHERE merchant_id = :m"),
                    {"m": merchant.merchant_id},
                )
            body = _order_body("after-change")
            headers = signer.headers("POST", CREATE, body)
            answer = await c.post(CREATE, content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            again = await c.post(CREATE, content=body, headers=headers)
            assert again.status_code == 401
            assert again.json()["error"]["code"] == "replayed_request"
    finally:
        await ctx.engine.dispose()
        if ctx.redis is not None:
            await ctx.redis.aclose()


async def _post(client: httpx.AsyncClient, signer: Signer, body: bytes) -> httpx.Response:
    return await client.post(CREATE, content=body, headers=signer.headers("POST", CREATE, body))


async def _change(gateway: GatewayContext, sql: str, **params: Any) -> None:
    async with session_scope(gateway.sessions) as session:
        await session.execute(text(sql), params)


async def test_a_refusal_with_cached_terms_is_checked_again(
    client: httpx.AsyncClient, gateway: GatewayContext, merchant: MerchantKeys, signer: Signer
) -> None:
    """Cached terms without the chain's payout address do not refuse an order once the address
    is back: the refusal is checked with the terms read anew."""
    assert (await _post(client, signer, _order_body("warm"))).status_code == 200
    payout = "SELECT address FROM payout_addresses WHERE merchant_id = :m AND chain_id = 31337"
    async with session_scope(gateway.sessions) as session:
        address = (await session.execute(text(payout), {"m": merchant.merchant_id})).scalar()
    where = "WHERE merchant_id = :m AND chain_id = 31337"
    async with session_scope(gateway.sessions) as session:
        row = (
            (
                await session.execute(
                    text(f"SELECT * FROM payout_addresses {where}"), {"m": merchant.merchant_id}
                )
            )
            .mappings()
            .one()
        )
    await _change(gateway, f"DELETE FROM payout_addresses {where}", m=merchant.merchant_id)
    missing = await _post(client, signer, _order_body("without"))
    assert missing.json()["error"]["code"] == "payout_address_missing"  # now cached so
    columns = ", ".join(row)
    await _change(
        gateway,
        f"INSERT INTO payout_addresses ({columns}) VALUES ({', '.join(':' + c for c in row)})",
        **dict(row),
    )
    answer = await _post(client, signer, _order_body("with-it-again"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["payoutAddress"] == address


async def test_a_revoked_key_with_a_bad_body_is_refused_as_revoked(
    client: httpx.AsyncClient, gateway: GatewayContext, merchant: MerchantKeys, signer: Signer
) -> None:
    assert (await _post(client, signer, _order_body("warm"))).status_code == 200
    await _change(
        gateway,
        "UPDATE api_keys SET revoked_at_ms = 1 WHERE merchant_id = :m",
        m=merchant.merchant_id,
    )
    bad = json.dumps({"chainId": "31337", "symbol": "USDT", "amount": "-1"}).encode()
    answer = await _post(client, signer, bad)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"


async def test_a_repeat_with_other_fields_is_a_conflict_on_the_one_statement_path(
    client: httpx.AsyncClient,
    gateway: GatewayContext,
    signer: Signer,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes = _count_statements(gateway, monkeypatch)
    assert (await _post(client, signer, _order_body("warm"))).status_code == 200
    first = await _post(client, signer, _order_body("same"))
    clock.advance(0.001)  # signed again: a repeat, not a replay
    repeat = await _post(client, signer, _order_body("same"))
    assert repeat.status_code == 200 and repeat.json()["orderId"] == first.json()["orderId"]
    other = await _post(client, signer, _order_body("same", amount="2"))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "order_conflict"
    assert [o.order_id is not None for o in outcomes] == [True, False, False]
    assert await _counts(gateway) == (2, 2, 4)


async def test_a_new_order_is_answered_as_its_first_event_and_the_stored_row_have_it(
    client: httpx.AsyncClient, gateway: GatewayContext, signer: Signer
) -> None:
    """Rendered once for its event and its answer: both are the order as stored."""
    assert (await _post(client, signer, _order_body("warm"))).status_code == 200
    body = _order_body("once-rendered", description="café", custNo="c-1")
    answer = await _post(client, signer, body)
    assert answer.status_code == 200, answer.text
    order_id = answer.json()["orderId"]
    async with session_scope(gateway.sessions) as session:
        stored = await session.get(Order, order_id)
        event = await session.scalar(select(WebhookEvent).where(WebhookEvent.order_id == order_id))
    assert stored is not None and event is not None
    assert answer.json() == event.payload["data"]
    assert answer.json() == order_view(stored, gateway.registry, gateway.settings.public_url)
