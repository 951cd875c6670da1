"""Server-sent events for the cashier: an event per change, heartbeats, the end of the stream.

The app is driven as ASGI directly (httpx's ASGI transport buffers whole responses), so the test
sees each chunk as the server sends it, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event, update
from tests.support import MerchantKeys

from stablegate.api.context import GatewayContext
from stablegate.cashier import events
from stablegate.cashier.events import StreamTiming, order_event_stream
from stablegate.cashier.live import LiveOrders
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.branding import MerchantBranding
from stablegate.models import Merchant, Order
from stablegate.orders import queries
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.orders.view import PublicOrderParts, public_order_view


class SseClient:
    """One GET through the ASGI app; ``next_event()`` returns the next parsed SSE block."""

    def __init__(self, app: FastAPI, path: str) -> None:
        self.app = app
        self.path = path
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.disconnect = asyncio.Event()
        self.buffer = ""
        self.done = False
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SseClient:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"pay.example.com"), (b"accept", b"text/event-stream")],
            "client": ("203.0.113.9", 40000),
            "server": ("pay.example.com", 80),
        }
        sent_request = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            await self.messages.put(message)

        self.task = asyncio.create_task(self.app(scope, receive, send))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.disconnect.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout=10)

    async def start(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.messages.get(), timeout=10)
        assert message["type"] == "http.response.start"
        return message

    async def next_block(self, wait: float = 10) -> str | None:
        """The next ``\\n\\n``-terminated block, or None once the response has ended."""
        deadline = time.monotonic() + wait
        while "\n\n" not in self.buffer:
            if self.done:
                return None
            message = await asyncio.wait_for(
                self.messages.get(), timeout=max(deadline - time.monotonic(), 0.01)
            )
            self.buffer += message.get("body", b"").decode()
            if not message.get("more_body", False):
                self.done = True
        block, self.buffer = self.buffer.split("\n\n", 1)
        return block

    async def next_event(self, wait: float = 10) -> dict[str, Any] | None:
        while True:
            block = await self.next_block(wait)
            if block is None:
                return None
            lines = block.split("\n")
            if lines[0] == "event: order":
                assert lines[1].startswith("data: ")
                parsed: dict[str, Any] = json.loads(lines[1][len("data: ") :])
                return parsed


POLL_INTERVAL = 0.05


@pytest.fixture
def fast_stream(monkeypatch: pytest.MonkeyPatch, gateway: GatewayContext) -> StreamTiming:
    timing = StreamTiming(heartbeat_interval=15, max_lifetime=60)
    monkeypatch.setattr(events, "DEFAULT_TIMING", timing)
    gateway.live_orders.interval = POLL_INTERVAL
    return timing


@pytest.fixture
async def order(gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys) -> Order:
    request = CreateOrderRequest.model_validate(
        {"chainId": 31337, "symbol": "USDT", "amount": "10", "description": "Coffee"}
    )
    async with session_scope(gateway.sessions) as session:
        created, _ = await create_order(
            session, clock, gateway.orders, merchant_id=merchant.merchant_id, req=request
        )
    return created


async def set_order(gateway: GatewayContext, order_id: str, **values: object) -> None:
    async with session_scope(gateway.sessions) as session:
        await session.execute(update(Order).where(Order.id == order_id).values(**values))


class CheckedOut:
    """Counts database connections checked out of the engine's pool right now."""

    def __init__(self, gateway: GatewayContext) -> None:
        self.now = 0
        pool = gateway.engine.sync_engine.pool
        event.listen(pool, "checkout", self._out)
        event.listen(pool, "checkin", self._in)

    def _out(self, *_: object) -> None:
        self.now += 1

    def _in(self, *_: object) -> None:
        self.now -= 1


async def test_stream_sends_the_view_on_each_change_and_ends_when_terminal(
    app: FastAPI, gateway: GatewayContext, order: Order, fast_stream: StreamTiming
) -> None:
    connections = CheckedOut(gateway)
    async with SseClient(app, f"/api/v1/public/orders/{order.id}/events") as sse:
        start = await sse.start()
        headers = dict(start["headers"])
        assert start["status"] == 200
        assert headers[b"content-type"].startswith(b"text/event-stream")
        assert headers[b"cache-control"] == b"no-store"
        assert await sse.next_block() == "retry: 3000"

        first = await sse.next_event()
        assert first is not None
        assert first["status"] == "pending" and first["amount"] == "10"
        assert first["toAddress"] == order.to_address and first["description"] == "Coffee"
        assert "orderNo" not in first and "metadata" not in first
        # Between polls the stream holds no database connection.
        await asyncio.sleep(POLL_INTERVAL / 2)
        assert connections.now == 0

        await set_order(gateway, order.id, status="confirming", pending_amount=10_000_000)
        second = await sse.next_event(wait=5)
        assert second is not None
        assert (second["status"], second["pendingAmount"]) == ("confirming", "10")
        # The shared poll renders from plain columns: the same view as from the full order.
        async with session_scope(gateway.sessions) as session:
            loaded = await session.get(Order, order.id)
            assert loaded is not None
            merchant = await session.get(Merchant, loaded.merchant_id)
            assert merchant is not None
            parts = PublicOrderParts(
                merchant=MerchantBranding.of(merchant),
                payments=await queries.order_payments(session, order.id),
            )
            full = public_order_view(loaded, gateway.registry, "https://pay.example.com", 0, parts)
        assert {**second, "serverTime": 0} == full

        await set_order(gateway, order.id, confirmations=2)
        third = await sse.next_event(wait=5)
        assert third is not None and third["confirmations"] == 2

        await set_order(
            gateway, order.id, status="completed", pending_amount=0, paid_amount=10_000_000
        )
        last = await sse.next_event(wait=5)
        assert last is not None and last["status"] == "completed"
        assert await sse.next_event(wait=5) is None  # the server ended the stream


async def test_stream_of_a_finished_order_is_one_event(
    app: FastAPI, gateway: GatewayContext, order: Order, fast_stream: StreamTiming
) -> None:
    await set_order(gateway, order.id, status="expired")
    async with SseClient(app, f"/api/v1/public/orders/{order.id}/events") as sse:
        await sse.start()
        only = await sse.next_event()
        assert only is not None and only["status"] == "expired"
        assert await sse.next_event() is None


async def test_stream_stops_when_the_client_goes_away(
    app: FastAPI, order: Order, fast_stream: StreamTiming
) -> None:
    sse = SseClient(app, f"/api/v1/public/orders/{order.id}/events")
    async with sse:
        await sse.start()
        assert await sse.next_event() is not None
    # __aexit__ signalled the disconnect and the app's task finished within the timeout.
    assert sse.task is not None and sse.task.done()


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [chunk async for chunk in stream]


async def test_heartbeats_while_nothing_changes_and_a_capped_lifetime() -> None:
    views = 0

    async def load(order_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        nonlocal views
        views += 1
        return {"o1": {"orderId": "o1", "status": "pending", "serverTime": views}}

    live = LiveOrders(load, dict, interval=0.01)
    subscription = live.subscribe("o1")
    subscription.offer({"orderId": "o1", "status": "pending", "serverTime": 0})
    started = time.monotonic()
    timing = StreamTiming(heartbeat_interval=0.05, max_lifetime=0.3)
    chunks = await asyncio.wait_for(collect(order_event_stream(subscription, timing=timing)), 5)
    live.unsubscribe(subscription)
    assert time.monotonic() - started < 2
    assert chunks[0] == "retry: 3000\n\n"
    assert chunks[1].startswith("event: order\ndata: ")
    assert json.loads(chunks[1].split("data: ", 1)[1])["serverTime"] == 0
    # The shared poll ran, but serverTime alone is not a change.
    assert live.ticks > 3
    heartbeats = [c for c in chunks[2:] if c == ": heartbeat\n\n"]
    assert heartbeats and len(heartbeats) == len(chunks) - 2
    assert 3 <= len(heartbeats) <= 7


async def test_stream_ends_when_the_order_disappears() -> None:
    async def load(order_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        return {}

    live = LiveOrders(load, dict, interval=0.01)
    subscription = live.subscribe("o1")
    subscription.offer({"orderId": "o1", "status": "pending", "serverTime": 0})
    chunks = await asyncio.wait_for(collect(order_event_stream(subscription)), 5)
    live.unsubscribe(subscription)
    assert chunks[0] == "retry: 3000\n\n" and chunks[1].startswith("event: order\n")
    assert chunks[2:] == []


async def settled(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds once the app's remaining tasks have run (waits up to 5 s)."""
    for _ in range(500):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return False


async def read_error(sse: SseClient) -> tuple[int, dict[str, Any]]:
    start = await sse.start()
    body = b""
    while True:
        message = await asyncio.wait_for(sse.messages.get(), timeout=10)
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    error: dict[str, Any] = json.loads(body)["error"]
    return start["status"], error


async def test_streams_above_the_cap_get_429_and_slots_come_back(
    app: FastAPI, gateway: GatewayContext, order: Order, fast_stream: StreamTiming
) -> None:
    slots, live = gateway.stream_slots, gateway.live_orders
    slots.per_ip = 2
    path = f"/api/v1/public/orders/{order.id}/events"
    async with SseClient(app, path) as first, SseClient(app, path) as second:
        for sse in (first, second):
            assert (await sse.start())["status"] == 200
            assert await sse.next_event() is not None
        assert slots.open_for("203.0.113.9") == 2 and live.running and live.watched == 1
        async with SseClient(app, path) as third:
            status, error = await read_error(third)
        assert (status, error["code"]) == (429, "too_many_streams")
        assert slots.open == 2

        # A stream the server ends (terminal status) gives its slot back.
        await set_order(gateway, order.id, status="cancelled")
        for sse in (first, second):
            last = await sse.next_event(wait=5)
            assert last is not None and last["status"] == "cancelled"
            assert await sse.next_event(wait=5) is None
        assert await settled(lambda: slots.open == 0)
        # The shared poll stops with its last subscriber.
        assert await settled(lambda: not live.running) and live.watched == 0

    # An unknown order: 404, and no slot kept.
    async with SseClient(app, "/api/v1/public/orders/nosuchorder/events") as missing:
        status, error = await read_error(missing)
    assert (status, error["code"]) == (404, "not_found")
    assert slots.open == 0 and live.watched == 0

    # A client that goes away mid-stream gives its slot back.
    await set_order(gateway, order.id, status="pending")
    async with SseClient(app, path) as leaving:
        await leaving.start()
        assert await leaving.next_event() is not None
        assert slots.open == 1
    assert await settled(lambda: slots.open == 0) and live.watched == 0


async def test_a_stream_that_fails_before_it_starts_gives_its_slot_back(
    app: FastAPI,
    gateway: GatewayContext,
    order: Order,
    fast_stream: StreamTiming,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_view(*_args: object, **_kwargs: object) -> dict[str, Any]:
        raise RuntimeError("the view could not be built")

    monkeypatch.setattr("stablegate.cashier.page.cashier_order_view", broken_view)
    slots, live = gateway.stream_slots, gateway.live_orders
    async with SseClient(app, f"/api/v1/public/orders/{order.id}/events") as sse:
        status, error = await read_error(sse)
    assert (status, error["code"]) == (500, "internal_error")
    assert await settled(lambda: slots.open == 0) and live.watched == 0
