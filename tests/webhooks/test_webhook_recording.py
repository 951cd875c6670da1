"""Attempts are recorded many to a transaction, each as if recorded on its own."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from tests.support import MerchantKeys
from tests.webhooks.test_webhook_ordering import assert_flags_follow_the_rule
from tests.webhooks.webhook_support import create_orders, events_by_id, make_worker

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import WebhookDelivery
from stablegate.webhooks import recorder
from stablegate.webhooks.recording import AttemptResult, Recorded, record_attempts
from stablegate.webhooks.schedule import base_delay_ms
from stablegate.webhooks.service import Outcome

URL = "http://127.0.0.1:9/hook"


@contextmanager
def statements(gateway: GatewayContext) -> Iterator[list[str]]:
    """The SQL sent to the database meanwhile (a list of parameter sets counts once)."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(gateway.engine.sync_engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(gateway.engine.sync_engine, "before_cursor_execute", listen)


async def test_one_transaction_records_a_mixed_batch_as_one_by_one_would(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    [ordered, failing, *plain] = await create_orders(
        gateway, clock, merchant.merchant_id, 12, events_per_order=2, notify_url=URL
    )
    t0 = clock.now_ms()
    async with make_worker(gateway, clock) as worker:
        first = {c.event_id: c for c in await worker.claim(100)}
        clock.advance(121)  # the leases run out and every head is claimed again
        claims = {c.event_id: c for c in await worker.claim(100)}
    assert set(first) == set(claims) == {ids[0] for ids in [ordered, failing, *plain]}
    now = clock.now_ms()

    def result(outcome: Outcome, status: int | None) -> AttemptResult:
        return AttemptResult(outcome, URL, now, 5, status_code=status)

    batch = [
        (claims[ordered[0]], result(Outcome.SUCCESS, 204)),
        (claims[failing[0]], result(Outcome.FAILURE, 503)),
        # The first claim of the same event, recorded after the takeover's: its lease is gone.
        (first[failing[0]], result(Outcome.SUCCESS, 200)),
        *((claims[ids[0]], result(Outcome.SUCCESS, 204)) for ids in plain),
    ]
    with statements(gateway) as sent:
        async with session_scope(gateway.sessions) as session:
            recorded = await record_attempts(session, batch, now_ms=now, rng=random.Random(1))
    next_at = recorded[1].next_attempt_at_ms
    assert next_at is not None and base_delay_ms(1) <= next_at - now <= base_delay_ms(1) * 1.1
    assert recorded == [
        Recorded(None, lease_lost=False),
        Recorded(next_at, lease_lost=False),
        Recorded(None, lease_lost=True),
        *[Recorded(None, lease_lost=False)] * len(plain),
    ]
    # Twelve attempts, a bounded number of statements: locks, the events, one INSERT of the
    # delivery rows, one UPDATE of the events (a list of parameter sets), the changed flags.
    assert len(sent) <= 6
    assert sum("INSERT INTO webhook_deliveries" in s for s in sent) == 1

    events = await events_by_id(gateway)
    assert [events[e].status for e in ordered] == ["delivered", "pending"]
    assert (events[failing[0]].status, events[failing[0]].attempts) == ("pending", 1)
    assert events[failing[0]].next_attempt_at_ms == next_at
    assert events[failing[0]].lease_until_ms is None
    assert all(events[ids[0]].status == "delivered" for ids in plain)
    flags = await assert_flags_follow_the_rule(gateway)
    assert flags[ordered[1]] is True  # released by its head's delivery in the same batch
    assert flags[failing[1]] is False  # still held by its failing head
    async with session_scope(gateway.sessions) as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
    assert len(rows) == len(batch)  # the lease-lost attempt is logged all the same
    assert sorted((r.event_id, r.outcome) for r in rows if r.event_id == failing[0]) == [
        (failing[0], "failure"),
        (failing[0], "success"),
    ]
    assert now == t0 + 121_000


async def test_attempts_that_finish_together_share_one_record_transaction(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    await create_orders(gateway, clock, merchant.merchant_id, 10, notify_url=URL)

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    async with make_worker(
        gateway,
        clock,
        max_per_host=10,
        http_client_factory=lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    ) as worker:
        with statements(gateway) as sent:
            assert await worker.run_once() == 10
    # One transaction per attempt would be ten INSERTs; the attempts that finished while a
    # record transaction ran join the next one.
    inserts = sum("INSERT INTO webhook_deliveries" in s for s in sent)
    assert 1 <= inserts <= 2
    assert {e.status for e in (await events_by_id(gateway)).values()} == {"delivered"}


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_a_batch_with_one_failure_records_each_attempt_as_it_went(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    orders = await create_orders(
        gateway, clock, merchant.merchant_id, 6, events_per_order=2, notify_url=URL
    )
    failing = orders[2][0]
    arrived: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        arrived.append(request.headers["webhook-id"])
        return httpx.Response(503 if request.headers["webhook-id"] == failing else 204)

    async with make_worker(
        gateway, clock, max_per_host=10, http_client_factory=lambda: mock_client(handler)
    ) as worker:
        with statements(gateway) as sent:
            assert await worker.run_once() == 6  # the six heads: each order's second waits
    assert sorted(arrived) == sorted(ids[0] for ids in orders)
    assert 1 <= sum("INSERT INTO webhook_deliveries" in s for s in sent) <= 2
    events = await events_by_id(gateway)
    for ids in orders:
        head, second = events[ids[0]], events[ids[1]]
        if ids[0] == failing:
            assert (head.status, head.attempts, head.lease_until_ms) == ("pending", 1, None)
            assert head.next_attempt_at_ms >= clock.now_ms() + base_delay_ms(1)
            assert second.status == "pending"  # still held behind its failing head
        else:
            assert (head.status, head.attempts) == ("delivered", 1)
    flags = await assert_flags_follow_the_rule(gateway)
    assert [flags[ids[1]] for ids in orders] == [ids[0] != failing for ids in orders]
    async with session_scope(gateway.sessions) as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
    assert sorted((r.event_id, r.outcome, r.attempt) for r in rows) == sorted(
        (ids[0], "failure" if ids[0] == failing else "success", 1) for ids in orders
    )


async def test_events_of_one_order_go_out_in_order_across_batches(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    orders = await create_orders(
        gateway, clock, merchant.merchant_id, 5, events_per_order=4, notify_url=URL
    )
    arrived: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        arrived.append(request.headers["webhook-id"])
        return httpx.Response(204)

    async with make_worker(
        gateway, clock, max_per_host=10, http_client_factory=lambda: mock_client(handler)
    ) as worker:
        # Each batch holds one event per order; its record lets the order's next one go.
        assert [await worker.run_once() for _ in range(5)] == [5, 5, 5, 5, 0]
    for ids in orders:
        assert [i for i in arrived if i in ids] == ids
    assert {e.status for e in (await events_by_id(gateway)).values()} == {"delivered"}


async def test_a_post_whose_record_never_committed_goes_out_again(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a SIGKILL between the POST and the commit of its record leaves: the event still
    leased and no delivery row. Once the lease ran out it is sent again (same Webhook-Id) and
    recorded; nothing is skipped and no state changed without its delivery row."""
    [[head, second]] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, events_per_order=2, notify_url=URL
    )
    arrived: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        arrived.append(request.headers["webhook-id"])
        return httpx.Response(204)

    async def dies_before_commit(*args: Any, **kwargs: Any) -> list[Recorded]:
        await record_attempts(*args, **kwargs)  # written, then the transaction is lost
        raise ConnectionError("the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(recorder, "record_attempts", dies_before_commit)
        async with make_worker(
            gateway, clock, http_client_factory=lambda: mock_client(handler)
        ) as worker:
            await worker.run_once()
    assert arrived == [head]
    event = (await events_by_id(gateway))[head]
    assert (event.status, event.attempts) == ("pending", 0)
    assert event.lease_until_ms is not None  # held by the dead worker until its lease ends
    async with session_scope(gateway.sessions) as session:
        assert (await session.scalars(select(WebhookDelivery))).all() == []

    async with make_worker(gateway, clock, http_client_factory=lambda: mock_client(handler)) as w:
        assert await w.run_once() == 0  # the lease still holds: not sent twice at once
        clock.advance(121)
        assert await w.run_once() == 1
        assert await w.run_once() == 1  # the second event, released by the recorded head
    assert arrived == [head, head, second]
    events = await events_by_id(gateway)
    assert {events[head].status, events[second].status} == {"delivered"}
    async with session_scope(gateway.sessions) as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
    assert sorted((r.event_id, r.attempt, r.outcome) for r in rows) == sorted(
        [(head, 1, "success"), (second, 1, "success")]
    )
