"""The delivery worker against real local receivers, on SQLite and PostgreSQL, with a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import (
    Hit,
    Receiver,
    create_orders,
    drive,
    events_by_id,
    make_worker,
    set_merchant_url,
)

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock, SystemClock
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.models import WebhookDelivery
from stablegate.webhooks import worker as worker_module
from stablegate.webhooks.claims import Claim
from stablegate.webhooks.schedule import GIVE_UP_AFTER_MS, base_delay_ms
from stablegate.webhooks.service import resend
from stablegate.webhooks.worker import WebhookWorker

H = 3_600_000


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    with Receiver(clock) as server:
        yield server


async def deliveries(gateway: GatewayContext) -> list[WebhookDelivery]:
    async with session_scope(gateway.sessions) as session:
        rows = await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return list(rows.all())


def assert_on_schedule(times: Sequence[int]) -> None:
    """Consecutive attempts are 10 s, 30 s, 1 min, ... apart, each stretched by <= 10 %."""
    for n, (a, b) in enumerate(itertools.pairwise(times), start=1):
        assert base_delay_ms(n) <= b - a <= base_delay_ms(n) * 1.1, (n, b - a)


async def test_a_receiver_down_for_an_hour_gets_every_event_in_order_exactly_once(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    t0 = clock.now_ms()
    orders = await create_orders(gateway, clock, merchant.merchant_id, 3, events_per_order=3)
    receiver.respond = lambda hit: 503 if hit.at_ms < t0 + H else 200

    async with make_worker(gateway, clock, rng=random.Random(11)) as worker:
        await drive(gateway, clock, [worker], until_ms=t0 + 80 * H)

    hits = receiver.snapshot()
    assert {e.status for e in (await events_by_id(gateway)).values()} == {"delivered"}
    delivered = [h for h in hits if h.status == 200]
    # After dedupe on Webhook-Id every event is there exactly once (here: no duplicates at all).
    assert sorted({h.event_id for h in delivered}) == sorted(itertools.chain(*orders))
    assert len(delivered) == 9
    for ids in orders:
        assert list(dict.fromkeys(h.event_id for h in hits if h.event_id in ids)) == ids
        assert [h.event_id for h in delivered if h.event_id in ids] == ids
        first = [h for h in hits if h.event_id == ids[0]]
        times = [h.at_ms for h in first]
        # Tried at 0, 10 s, 40 s, 100 s, 400 s, 1300 s (down), then 1 h later: back.
        assert times[0] == t0 and len(times) == 7
        assert_on_schedule(times)
        assert [h.status for h in first] == [503] * 6 + [200]
        # The rest of the order went right behind it.
        assert [h.at_ms for h in delivered if h.event_id in ids[1:]] == [times[-1]] * 2
    assert all(int(h.headers["blockatm-request-time"]) == h.at_ms for h in hits)


async def test_a_stuck_event_holds_only_its_order_and_only_for_an_hour(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url("hook"))
    t0 = clock.now_ms()
    healthy = await create_orders(gateway, clock, merchant.merchant_id, 2, events_per_order=3)
    # The order's own notifyUrl wins over the merchant's.
    [stuck] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, events_per_order=3, notify_url=receiver.url("s")
    )
    receiver.respond = lambda hit: 500 if hit.event_id == stuck[0] else 200

    async with make_worker(gateway, clock, rng=random.Random(5)) as worker:
        await drive(gateway, clock, [worker], until_ms=t0 + 73 * H)

    hits = receiver.snapshot()
    for ids in healthy:  # never waited for the stuck order
        assert [(h.event_id, h.at_ms, h.path) for h in hits if h.event_id in ids] == [
            (event_id, t0, "/hook") for event_id in ids
        ]
    stuck_hits = [h for h in hits if h.event_id in stuck]
    assert {h.path for h in stuck_hits} == {"/s"}
    first_times = [h.at_ms for h in stuck_hits if h.event_id == stuck[0]]
    assert_on_schedule(first_times)
    # Event 2 waited until event 1 had been retrying for an hour (its 7th attempt failed) ...
    released = first_times[6]
    assert released >= t0 + H
    later = [(h.event_id, h.at_ms) for h in stuck_hits if h.event_id != stuck[0]]
    assert later == [(stuck[1], released), (stuck[2], released)]
    # ... and event 1 kept its schedule until 72 h after its first attempt, then failed.
    assert first_times[-1] <= t0 + GIVE_UP_AFTER_MS
    assert first_times[-1] + base_delay_ms(len(first_times)) > t0 + GIVE_UP_AFTER_MS
    events = await events_by_id(gateway)
    assert events[stuck[0]].status == "failed"
    assert events[stuck[0]].attempts == len(first_times) >= 24
    assert [events[i].status for i in stuck[1:]] == ["delivered", "delivered"]

    # A failed event is kept and can be resent: a fresh schedule, attempt numbers from 1.
    async with session_scope(gateway.sessions) as session:
        count = await resend(
            session, clock, merchant_id=merchant.merchant_id, event_id=stuck[0], actor="test"
        )
    assert count == 1
    receiver.respond = lambda hit: 200
    async with make_worker(gateway, clock) as worker:
        assert await worker.run_once() == 1
    assert (await events_by_id(gateway))[stuck[0]].status == "delivered"
    last = (await deliveries(gateway))[-1]
    assert (last.event_id, last.attempt, last.outcome) == (stuck[0], 1, "success")


async def test_an_event_with_no_url_is_kept_as_no_endpoint_and_resendable(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    [[event_id]] = await create_orders(gateway, clock, merchant.merchant_id, 1)
    async with make_worker(gateway, clock) as worker:
        assert await worker.run_once() == 0
        event = (await events_by_id(gateway))[event_id]
        assert (event.status, event.attempts, event.lease_until_ms) == ("no_endpoint", 0, None)
        [row] = await deliveries(gateway)
        assert (row.outcome, row.attempt, row.url) == ("skipped", 0, "")
        assert row.error == "no notifyUrl on the order or the merchant"

        await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
        assert await worker.run_once() == 0  # nothing is re-sent by itself
        async with session_scope(gateway.sessions) as session:
            assert (
                await resend(
                    session, clock, merchant_id=merchant.merchant_id, failed=True, actor="test"
                )
                == 1
            )
        assert await worker.run_once() == 1
    assert (await events_by_id(gateway))[event_id].status == "delivered"
    assert [h.event_id for h in receiver.snapshot()] == [event_id]


async def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_takeover(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    [[event_id]] = await create_orders(gateway, clock, merchant.merchant_id, 1)
    arrived, release = threading.Event(), threading.Event()

    async def respond(hit: Hit) -> int:
        if not arrived.is_set():  # the first request hangs until the test lets it fail
            arrived.set()
            assert await asyncio.to_thread(release.wait, 30)
            return 500
        return 200

    receiver.respond = respond
    async with make_worker(gateway, clock) as slow, make_worker(gateway, clock) as other:
        [stale] = await slow.claim(10)
        in_flight = asyncio.create_task(slow.attempt(stale))
        assert await asyncio.to_thread(arrived.wait, 30)
        clock.advance(121)  # the slow worker's 120 s lease is over
        [fresh] = await other.claim(10)
        assert fresh.event_id == event_id and fresh.lease_until_ms > stale.lease_until_ms
        assert await other.attempt(fresh)
        release.set()
        assert await in_flight  # its attempt happened, and is logged ...
    event = (await events_by_id(gateway))[event_id]
    assert (event.status, event.attempts, event.lease_until_ms) == ("delivered", 1, None)
    rows = await deliveries(gateway)  # ... but it did not undo the delivery
    assert sorted((r.attempt, r.outcome) for r in rows) == [(1, "failure"), (1, "success")]
    assert receiver.overlaps == [event_id]  # what only a lease takeover can cause


async def test_an_attempt_that_waited_too_long_for_its_host_is_handed_back(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    ids = [i for [i] in await create_orders(gateway, clock, merchant.merchant_id, 4)]
    t0 = clock.now_ms()

    def slow(_hit: Hit) -> int:
        clock.advance(60)  # each request "takes" a minute of the 120 s lease
        return 200

    receiver.respond = slow
    async with make_worker(gateway, clock, max_per_host=1) as worker:
        assert await worker.run_once() == 2  # the last two would start past lease - 20 s
    events = await events_by_id(gateway)
    assert sorted(e.status for e in events.values()) == ["delivered"] * 2 + ["pending"] * 2
    for event in events.values():
        if event.status == "pending":
            assert (event.attempts, event.lease_until_ms, event.next_attempt_at_ms) == (0, None, t0)
    assert len(await deliveries(gateway)) == 2
    assert {h.event_id for h in receiver.snapshot()} < set(ids)


async def test_two_workers_never_hold_the_same_row(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, "http://127.0.0.1:9/hook")
    ids = {i for [i] in await create_orders(gateway, clock, merchant.merchant_id, 60)}
    engine = make_engine(gateway.settings.effective_database_url)
    try:
        one = make_worker(gateway, clock)
        two = WebhookWorker(
            make_sessionmaker(engine),
            clock,
            gateway.settings,
            gateway.secret_box,
            gateway.signing_key,
        )
        for _ in range(3):
            a, b = await asyncio.gather(one.claim(40), two.claim(40))
            got_a, got_b = {c.event_id for c in a}, {c.event_id for c in b}
            assert not got_a & got_b
            assert got_a | got_b == ids
            assert await one.claim(40) == [] and await two.claim(40) == []
            clock.advance(121)  # leases run out: a crashed worker's rows are taken again
    finally:
        await engine.dispose()


async def test_concurrent_workers_never_send_one_attempt_twice(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    orders = await create_orders(gateway, clock, merchant.merchant_id, 40, events_per_order=3)
    flaky, lock = random.Random(3), threading.Lock()

    def respond(_hit: Hit) -> int:
        with lock:
            return 500 if flaky.random() < 0.3 else 200

    receiver.respond = respond
    receiver.delay = 0.005
    engine = make_engine(gateway.settings.effective_database_url)
    try:
        workers = [
            make_worker(gateway, clock, batch_size=7),
            WebhookWorker(
                make_sessionmaker(engine),
                clock,
                gateway.settings.model_copy(update={"allow_private_webhooks": True}),
                gateway.secret_box,
                gateway.signing_key,
                batch_size=7,
            ),
        ]
        per_worker = await drive(gateway, clock, workers, until_ms=clock.now_ms() + 80 * H)
        for worker in workers:
            await worker.aclose()
    finally:
        await engine.dispose()

    hits = receiver.snapshot()
    assert receiver.overlaps == []  # no event was ever in flight twice at once
    rows = [r for r in await deliveries(gateway) if r.outcome != "skipped"]
    assert len(hits) == len(rows) == sum(per_worker)
    assert min(per_worker) > 0.2 * sum(per_worker)  # both workers really took part
    assert max(Counter((r.event_id, r.attempt) for r in rows).values()) == 1
    assert Counter(r.event_id for r in rows if r.outcome == "success") == Counter(
        itertools.chain(*orders)
    )
    assert {e.status for e in (await events_by_id(gateway)).values()} == {"delivered"}
    for ids in orders:  # and each order's events were first received in order
        assert list(dict.fromkeys(h.event_id for h in hits if h.event_id in ids)) == ids


async def test_at_most_four_deliveries_at_once_per_receiving_host(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    await create_orders(gateway, clock, merchant.merchant_id, 12)
    await create_orders(
        gateway, clock, merchant.merchant_id, 12, notify_url=receiver.url(host="localhost")
    )
    receiver.delay = 0.15
    async with make_worker(gateway, clock, resolver=resolve) as worker:
        assert await worker.run_once() == 24
    port = receiver.server.port
    assert receiver.max_per_host == {f"127.0.0.1:{port}": 4, f"localhost:{port}": 4}


async def test_run_forever_delivers_everything_then_stops_on_request(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    orders = await create_orders(gateway, clock, merchant.merchant_id, 12, events_per_order=2)
    receiver.delay = 0.02
    stop = asyncio.Event()
    # The real clock: rows handed back because the host is busy come due a second later.
    worker = make_worker(gateway, SystemClock(), max_per_host=2, poll_interval=0.05)
    task = asyncio.create_task(worker.run_forever(stop))
    for _ in range(600):
        if {e.status for e in (await events_by_id(gateway)).values()} == {"delivered"}:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=15)
    assert {e.status for e in (await events_by_id(gateway)).values()} == {"delivered"}
    hits = receiver.snapshot()
    assert sorted(h.event_id for h in hits) == sorted(itertools.chain(*orders))
    assert max(receiver.max_per_host.values()) <= 2


async def test_run_forever_survives_a_database_that_fails_for_a_while(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    [[event_id]] = await create_orders(gateway, clock, merchant.merchant_id, 1)
    worker = make_worker(gateway, clock, poll_interval=0.02)
    real_claim = worker.claim
    failures: list[int] = []

    async def flaky_claim(limit: int) -> list[Claim]:
        if len(failures) < 3:
            failures.append(limit)
            raise OperationalError("SELECT", {}, ConnectionRefusedError("database is down"))
        return await real_claim(limit)

    monkeypatch.setattr(worker, "claim", flaky_claim)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    for _ in range(500):
        if receiver.snapshot():
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=15)
    assert len(failures) == 3
    assert [h.event_id for h in receiver.snapshot()] == [event_id]
    assert (await events_by_id(gateway))[event_id].status == "delivered"


async def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "ATTEMPT_TIMEOUT_S", 0.3)  # 10 s in production
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    [[event_id]] = await create_orders(gateway, clock, merchant.merchant_id, 1)
    receiver.delay = 1.0
    async with make_worker(gateway, clock) as worker:
        assert await worker.run_once() == 1
    [row] = await deliveries(gateway)
    assert (row.outcome, row.response_status, row.error) == (
        "error",
        None,
        "no response within 0.3 s",
    )
    event = (await events_by_id(gateway))[event_id]
    assert (event.status, event.attempts) == ("pending", 1)


@pytest.mark.parametrize(
    ("content", "stored"),
    [
        (b"x" * 1000, "x" * 256),
        (b"ok\x00\xff", "ok\ufffd\ufffd"),
        (b"", None),
    ],
)
async def test_the_log_keeps_at_most_256_bytes_of_the_response(
    gateway: GatewayContext,
    clock: FakeClock,
    merchant: MerchantKeys,
    content: bytes,
    stored: str | None,
) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(410, content=content)

    await set_merchant_url(gateway, merchant.merchant_id, "http://93.184.216.34/hook")
    await create_orders(gateway, clock, merchant.merchant_id, 1)
    async with make_worker(
        gateway,
        clock,
        allow_private=False,
        http_client_factory=lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    ) as worker:
        assert await worker.run_once() == 1
    [row] = await deliveries(gateway)
    assert (row.outcome, row.response_status, row.response_body) == ("failure", 410, stored)
    assert row.url == "http://93.184.216.34/hook"
