"""SQLite's writer of signed orders (stablegate.orders.signed_insert_sqlite): orders that arrive
together share one transaction, and each is decided as it would be alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support import MerchantKeys, credential_epoch, replay_claim

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.terms import MerchantTerms, load_terms
from stablegate.models import Order, ReplayKey, WebhookEvent
from stablegate.orders import service
from stablegate.orders.insert_guard import ConfirmedRefusal, InsertGuard, StaleCredentials
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.signed_insert_sqlite import SqliteSignedOrders


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


def _writer(gateway: GatewayContext) -> SqliteSignedOrders:
    assert isinstance(gateway.signed_orders, SqliteSignedOrders)
    return gateway.signed_orders


def _batches(gateway: GatewayContext, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every transaction the writer commits."""
    writer = _writer(gateway)
    sizes: list[int] = []
    original = writer._write

    def counted(batch: list[Any]) -> Any:
        sizes.append(len(batch))
        return original(batch)

    monkeypatch.setattr(writer, "_write", counted)
    return sizes


async def _count(gateway: GatewayContext, model: type[Any]) -> int:
    async with session_scope(gateway.sessions) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def terms(gateway: GatewayContext, merchant: MerchantKeys) -> MerchantTerms:
    async with session_scope(gateway.sessions) as session:
        terms = await load_terms(session, merchant.merchant_id)
    assert terms is not None
    return terms


async def _create(
    gateway: GatewayContext,
    merchant: MerchantKeys,
    terms: MerchantTerms,
    guard: InsertGuard,
    order_no: str,
    merchant_id: str | None = None,
) -> tuple[Order, bool]:
    """Nothing awaited before the writer: orders started together reach it together."""
    req = CreateOrderRequest.model_validate(
        {"chainId": "31337", "symbol": "USDT", "amount": "3", "orderNo": order_no}
    )
    async with session_scope(gateway.sessions) as session:
        return await service.create_order(
            session,
            gateway.clock,
            gateway.orders,
            merchant_id=merchant_id or merchant.merchant_id,
            req=req,
            terms=terms,
            detached=True,
            guard=guard,
        )


async def test_orders_arriving_together_share_one_transaction(
    gateway: GatewayContext,
    merchant: MerchantKeys,
    terms: MerchantTerms,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches = _batches(gateway, monkeypatch)
    epoch = await credential_epoch(gateway)
    made = await asyncio.gather(
        *(
            _create(
                gateway,
                merchant,
                terms,
                InsertGuard(epoch, replay_claim(clock, f"{n:064x}")),
                f"o{n}",
            )
            for n in range(12)
        )
    )
    assert all(created for _, created in made)
    assert batches == [12]
    assert await _count(gateway, Order) == 12
    assert await _count(gateway, WebhookEvent) == 12
    assert await _count(gateway, ReplayKey) == 12


async def test_each_order_of_a_transaction_is_decided_as_if_alone(
    gateway: GatewayContext,
    merchant: MerchantKeys,
    terms: MerchantTerms,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replay, a stale epoch, a repeated orderNo and an order breaking a constraint, in one
    transaction with orders that go through: only what each would do alone happens."""
    batches = _batches(gateway, monkeypatch)
    epoch = await credential_epoch(gateway)
    results = await asyncio.gather(
        _create(
            gateway, merchant, terms, InsertGuard(epoch, replay_claim(clock, "a" * 64)), "first"
        ),
        _create(
            gateway, merchant, terms, InsertGuard(epoch, replay_claim(clock, "a" * 64)), "replayed"
        ),
        _create(
            gateway, merchant, terms, InsertGuard(epoch + 1, replay_claim(clock, "b" * 64)), "stale"
        ),
        _create(
            gateway,
            merchant,
            terms,
            InsertGuard(epoch, replay_claim(clock, "c" * 64)),
            "no-such-merchant",
            merchant_id="m_missing",
        ),
        _create(
            gateway, merchant, terms, InsertGuard(epoch, replay_claim(clock, "d" * 64)), "first"
        ),
        _create(
            gateway, merchant, terms, InsertGuard(epoch, replay_claim(clock, "e" * 64)), "second"
        ),
        return_exceptions=True,
    )
    assert batches == [6]
    first, replayed, stale, broken, repeat, second = results
    assert isinstance(first, tuple) and first[1]
    assert isinstance(replayed, ConfirmedRefusal)
    assert replayed.error.code == "replayed_request"
    assert isinstance(stale, StaleCredentials)
    assert isinstance(broken, sqlite3.IntegrityError)  # the merchant's foreign key
    assert isinstance(repeat, tuple) and not repeat[1] and repeat[0].id == first[0].id
    assert isinstance(second, tuple) and second[1]
    assert await _count(gateway, Order) == 2
    assert await _count(gateway, WebhookEvent) == 2
    # first, repeat (a repeat keeps its claim) and second; the broken order's was rolled back.
    assert await _count(gateway, ReplayKey) == 3


async def test_a_transaction_that_fails_fails_each_of_its_orders(
    gateway: GatewayContext,
    merchant: MerchantKeys,
    terms: MerchantTerms,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = _writer(gateway)

    def failing(batch: list[Any]) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writer, "_write", failing)
    epoch = await credential_epoch(gateway)
    results = await asyncio.gather(
        *(
            _create(
                gateway,
                merchant,
                terms,
                InsertGuard(epoch, replay_claim(clock, f"{n:064x}")),
                f"f{n}",
            )
            for n in range(3)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    monkeypatch.undo()
    # The writer goes on with the next orders.
    _, created = await _create(
        gateway, merchant, terms, InsertGuard(epoch, replay_claim(clock, "f" * 64)), "ok"
    )
    assert created
    assert await _count(gateway, Order) == 1


async def test_closing_waits_for_the_transaction_being_written(
    gateway: GatewayContext, merchant: MerchantKeys, terms: MerchantTerms, clock: FakeClock
) -> None:
    epoch = await credential_epoch(gateway)
    pending = asyncio.ensure_future(
        _create(gateway, merchant, terms, InsertGuard(epoch, replay_claim(clock, "9" * 64)), "late")
    )
    await asyncio.sleep(0)  # the order reaches the writer, which starts its transaction
    assert _writer(gateway)._writer is not None
    await _writer(gateway).close()
    _, created = await pending
    assert created
    assert await _count(gateway, Order) == 1


async def test_orders_waiting_on_a_cancelled_writer_are_cancelled_not_left_hanging(
    gateway: GatewayContext,
    merchant: MerchantKeys,
    terms: MerchantTerms,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = _writer(gateway)
    release = threading.Event()
    original = writer._write

    def held(batch: list[Any]) -> Any:
        release.wait(10)
        return original(batch)

    monkeypatch.setattr(writer, "_write", held)
    epoch = await credential_epoch(gateway)
    first = asyncio.ensure_future(
        _create(gateway, merchant, terms, InsertGuard(epoch, replay_claim(clock, "1" * 64)), "a")
    )
    await asyncio.sleep(0)  # in the thread, held
    second = asyncio.ensure_future(
        _create(gateway, merchant, terms, InsertGuard(epoch, replay_claim(clock, "2" * 64)), "b")
    )
    await asyncio.sleep(0)  # waiting for the next transaction
    assert writer._writer is not None
    writer._writer.cancel()
    results = await asyncio.wait_for(
        asyncio.gather(first, second, return_exceptions=True), timeout=5
    )
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    release.set()
