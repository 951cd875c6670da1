"""The ``deliverable`` flag the claim reads follows the per-order ordering rule after every change.

Each check compares the stored flags with the rule worked out from scratch (``rule_flags``), so
dropping the upkeep at any writer (outbox insert, delivered, failed attempt, released after
ORDER_RELEASE_ATTEMPTS, given up, no endpoint, resend) fails here.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import (
    Receiver,
    create_orders,
    events_by_id,
    make_worker,
    next_due_after,
    rule_flags,
    set_merchant_url,
)

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.models import Order
from stablegate.orders.view import order_view
from stablegate.webhooks.outbox import add_event
from stablegate.webhooks.schedule import ORDER_RELEASE_ATTEMPTS
from stablegate.webhooks.service import resend
from stablegate.webhooks.worker import WebhookWorker

H = 3_600_000


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    with Receiver(clock) as server:
        yield server


async def assert_flags_follow_the_rule(gateway: GatewayContext) -> dict[str, bool]:
    events = list((await events_by_id(gateway)).values())
    stored = {e.id: e.deliverable for e in events}
    assert stored == rule_flags(events)
    # Per order, at most one deliverable event is still inside its hold (the head of line);
    # any others before it were released after ORDER_RELEASE_ATTEMPTS attempts.
    heads = Counter(
        e.order_id for e in events if e.deliverable and e.attempts < ORDER_RELEASE_ATTEMPTS
    )
    assert set(heads.values()) <= {1}
    return stored


async def claimed_now(worker: WebhookWorker) -> set[str]:
    """What a claim returns right now (handed back unattempted)."""
    claims = await worker.claim(100)
    await worker.release(claims)
    return {c.event_id for c in claims}


async def run_checked(
    gateway: GatewayContext, clock: FakeClock, worker: WebhookWorker, *, until_ms: int
) -> None:
    """Attempt every due claim one at a time, checking the flags after each, and jump the clock
    to the next due attempt when nothing is due, until nothing is pending or ``until_ms``."""
    for _ in range(1000):
        claims = await worker.claim(100)
        for claim in claims:
            await worker.attempt(claim)
            await assert_flags_follow_the_rule(gateway)
        if claims:
            continue
        due = await next_due_after(gateway, clock.now_ms())
        if due is None or due > until_ms:
            return
        clock.set_ms(due)
    raise AssertionError("the delivery loop did not settle")


async def add_order_event(gateway: GatewayContext, clock: FakeClock, order_id: str) -> str:
    async with session_scope(gateway.sessions) as session:
        order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
        assert order is not None
        view = order_view(order, gateway.registry, gateway.settings.public_url)
        return (await add_event(session, clock, order, "order.refunded", view)).id


async def test_the_claim_flag_follows_the_ordering_rule_through_every_change(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    t0 = clock.now_ms()
    [healthy] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, events_per_order=3, notify_url=receiver.url("a")
    )
    [stuck] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, events_per_order=3, notify_url=receiver.url("b")
    )
    [unreachable] = await create_orders(gateway, clock, merchant.merchant_id, 1, events_per_order=2)
    flags = await assert_flags_follow_the_rule(gateway)
    assert {e for e, f in flags.items() if f} == {healthy[0], stuck[0], unreachable[0]}
    receiver.respond = lambda hit: 500 if hit.event_id == stuck[0] else 200

    async with make_worker(gateway, clock, rng=random.Random(7)) as worker:
        # The claim returns each order's next event only.
        assert await claimed_now(worker) == {healthy[0], stuck[0], unreachable[0]}

        # Delivered, failed (held, then released after ORDER_RELEASE_ATTEMPTS), given up,
        # no endpoint: the flags follow after every attempt.
        await run_checked(gateway, clock, worker, until_ms=t0 + 80 * H)
        events = await events_by_id(gateway)
        assert [events[e].status for e in healthy] == ["delivered"] * 3
        assert [events[e].status for e in stuck] == ["failed", "delivered", "delivered"]
        assert events[stuck[0]].attempts >= ORDER_RELEASE_ATTEMPTS
        assert [events[e].status for e in unreachable] == ["no_endpoint"] * 2
        stuck_hits = [h for h in receiver.snapshot() if h.event_id in stuck]
        released = [h.at_ms for h in stuck_hits if h.event_id == stuck[0]][
            ORDER_RELEASE_ATTEMPTS - 1
        ]
        assert [(h.event_id, h.at_ms) for h in stuck_hits if h.event_id != stuck[0]] == [
            (stuck[1], released),
            (stuck[2], released),
        ]

        # Resending the failed event puts it at the head again: a new event of its order waits.
        async with session_scope(gateway.sessions) as session:
            await resend(
                session, clock, merchant_id=merchant.merchant_id, event_id=stuck[0], actor="test"
            )
        await assert_flags_follow_the_rule(gateway)
        later = await add_order_event(gateway, clock, events[stuck[0]].order_id)
        flags = await assert_flags_follow_the_rule(gateway)
        assert (flags[stuck[0]], flags[later]) == (True, False)
        assert await claimed_now(worker) == {stuck[0]}

        # Resending all of the merchant's no_endpoint events: only the first of the order goes.
        async with session_scope(gateway.sessions) as session:
            count = await resend(
                session, clock, merchant_id=merchant.merchant_id, failed=True, actor="test"
            )
        assert count == 2
        await assert_flags_follow_the_rule(gateway)
        assert await claimed_now(worker) == {stuck[0], unreachable[0]}

        await set_merchant_url(gateway, merchant.merchant_id, receiver.url("c"))
        receiver.respond = lambda hit: 200
        start = len(receiver.snapshot())
        await run_checked(gateway, clock, worker, until_ms=clock.now_ms() + H)

    events = await events_by_id(gateway)
    assert {e.status for e in events.values()} == {"delivered"}
    assert not any(e.deliverable for e in events.values())
    arrived = [h.event_id for h in receiver.snapshot()[start:]]
    assert arrived.index(stuck[0]) < arrived.index(later)
    assert arrived.index(unreachable[0]) < arrived.index(unreachable[1])


async def test_a_delivery_recorded_while_its_order_gets_a_new_event_lets_that_event_go(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    """The race the order lock closes (PostgreSQL; SQLite write transactions never overlap):
    the new event is written while event 1's delivery is being recorded. Without the lock each
    transaction misses the other's uncommitted row, and the new event is held forever."""
    if gateway.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes write transactions")
    [[first]] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, notify_url=receiver.url()
    )
    events = await events_by_id(gateway)
    order_id = events[first].order_id
    engine = make_engine(gateway.settings.effective_database_url)
    try:
        async with make_worker(gateway, clock) as worker:
            [claim] = await worker.claim(10)
            async with session_scope(make_sessionmaker(engine)) as session:
                # The outbox writer holds the order and has read event 1 as pending ...
                order = await session.scalar(
                    select(Order).where(Order.id == order_id).with_for_update()
                )
                assert order is not None
                view = order_view(order, gateway.registry, gateway.settings.public_url)
                added = await add_event(session, clock, order, "order.expired", view)
                assert added.deliverable is False
                # ... when the delivery of event 1 is recorded: it waits for the order.
                recording = asyncio.create_task(worker.attempt(claim))
                pid = await session.scalar(text("SELECT pg_backend_pid()"))
                for _ in range(2000):
                    if recording.done() or await _waits_for(session, pid):
                        break
                    await asyncio.sleep(0.005)
                assert not recording.done()
            assert await recording
    finally:
        await engine.dispose()
    flags = await assert_flags_follow_the_rule(gateway)
    assert flags[added.id] is True
    async with make_worker(gateway, clock) as worker:
        assert await worker.run_once() == 1
    assert [h.event_id for h in receiver.snapshot()] == [first, added.id]


async def _waits_for(session: AsyncSession, blocker_pid: int | None) -> bool:
    """Some backend is waiting for a lock held by ``blocker_pid``."""
    waiting = await session.scalar(
        text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
        {"pid": blocker_pid},
    )
    return bool(waiting)
