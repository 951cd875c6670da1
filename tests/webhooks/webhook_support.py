"""Helpers for the webhook tests: a real local receiver, outbox seeding, a clock-driving loop."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from tests.support import LiveServer

from stablegate.api.context import GatewayContext
from stablegate.clock import Clock, FakeClock
from stablegate.db.engine import session_scope
from stablegate.models import Merchant, Order, WebhookEvent
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.orders.view import order_view
from stablegate.webhooks.outbox import add_event
from stablegate.webhooks.schedule import ORDER_RELEASE_ATTEMPTS
from stablegate.webhooks.worker import WebhookWorker

LATER_EVENTS = ("order.payment_seen", "order.confirming", "order.completed", "order.overpaid")


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at_ms: int  # the test clock when the request arrived
    status: int  # what the receiver answered

    @property
    def event_id(self) -> str:
        return self.headers.get("webhook-id", "")


Responder = Callable[[Hit], int | Awaitable[int]]


class Receiver:
    """A real HTTP server (uvicorn in a thread) that records every webhook it gets.

    ``respond`` picks the status per request (it may be async, e.g. to hold a request open);
    ``delay`` holds every request that long. Concurrency is tracked per event id (``overlaps``
    lists events that were in flight twice at once) and per Host header (``max_per_host``).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.respond: Responder = lambda _hit: 200
        self.delay = 0.0
        self.hits: list[Hit] = []
        self.overlaps: list[str] = []
        self.max_per_host: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._per_host: Counter[str] = Counter()
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])])
        self.server = LiveServer(app)

    def url(self, path: str = "hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server.port}/{path}"

    def __enter__(self) -> Receiver:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    async def _handle(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the sender died mid-request (the SIGKILL test)
            return Response(status_code=499)
        headers = {k.lower(): v for k, v in request.headers.items()}
        event_id, host = headers.get("webhook-id", ""), headers.get("host", "")
        with self._lock:
            self._in_flight[event_id] += 1
            if self._in_flight[event_id] > 1:
                self.overlaps.append(event_id)
            self._per_host[host] += 1
            self.max_per_host[host] = max(self.max_per_host[host], self._per_host[host])
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            probe = Hit(request.url.path, headers, body, self.clock.now_ms(), 0)
            answer = self.respond(probe)
            status = await answer if inspect.isawaitable(answer) else answer
            with self._lock:
                self.hits.append(Hit(probe.path, headers, body, probe.at_ms, int(status)))
        finally:
            with self._lock:
                self._in_flight[event_id] -= 1
                self._per_host[host] -= 1
        # A 204 or 304 carries no body (uvicorn refuses to send one).
        content = b"" if int(status) in (204, 304) else f"status {status}".encode()
        return Response(content, status_code=int(status))

    def snapshot(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)


def make_worker(
    gateway: GatewayContext, clock: Clock, *, allow_private: bool = True, **kwargs: Any
) -> WebhookWorker:
    settings = gateway.settings.model_copy(update={"allow_private_webhooks": allow_private})
    return WebhookWorker(
        gateway.sessions, clock, settings, gateway.secret_box, gateway.signing_key, **kwargs
    )


async def set_merchant_url(gateway: GatewayContext, merchant_id: str, url: str | None) -> None:
    async with session_scope(gateway.sessions) as session:
        await session.execute(
            update(Merchant).where(Merchant.id == merchant_id).values(notify_url=url)
        )


async def create_orders(
    gateway: GatewayContext,
    clock: Clock,
    merchant_id: str,
    count: int,
    *,
    events_per_order: int = 1,
    notify_url: str | None = None,
) -> list[list[str]]:
    """``count`` orders, each with ``events_per_order`` outbox events; their ids in sequence."""
    result: list[list[str]] = []
    async with session_scope(gateway.sessions) as session:
        for _ in range(count):
            req = CreateOrderRequest.model_validate(
                {"chainId": 31337, "symbol": "USDT", "amount": "1", "notifyUrl": notify_url}
            )
            order, _created = await create_order(
                session, clock, gateway.orders, merchant_id=merchant_id, req=req
            )
            view = order_view(order, gateway.registry, gateway.settings.public_url)
            for event_type in LATER_EVENTS[: events_per_order - 1]:
                await add_event(session, clock, order, event_type, view)
            ids = await session.scalars(
                select(WebhookEvent.id)
                .where(WebhookEvent.order_id == order.id)
                .order_by(WebhookEvent.sequence)
            )
            result.append(list(ids))
    return result


async def events_by_id(gateway: GatewayContext) -> dict[str, WebhookEvent]:
    async with session_scope(gateway.sessions) as session:
        return {e.id: e for e in (await session.scalars(select(WebhookEvent))).all()}


def rule_flags(events: list[WebhookEvent]) -> dict[str, bool]:
    """The ordering rule worked out from scratch: an event is deliverable when it is pending and
    no earlier event of its order is pending with fewer than ORDER_RELEASE_ATTEMPTS attempts."""
    flags: dict[str, bool] = {}
    held: set[str] = set()  # orders with such an earlier event
    for event in sorted(events, key=lambda e: (e.order_id, e.sequence)):
        pending = event.status == "pending"
        flags[event.id] = pending and event.order_id not in held
        if pending and event.attempts < ORDER_RELEASE_ATTEMPTS:
            held.add(event.order_id)
    return flags


async def order_of(gateway: GatewayContext, order_id: str) -> Order:
    async with session_scope(gateway.sessions) as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return order


async def next_due_after(gateway: GatewayContext, now_ms: int) -> int | None:
    async with session_scope(gateway.sessions) as session:
        value = await session.scalar(
            select(func.min(WebhookEvent.next_attempt_at_ms)).where(
                WebhookEvent.status == "pending", WebhookEvent.next_attempt_at_ms > now_ms
            )
        )
    return None if value is None else int(value)


async def drive(
    gateway: GatewayContext,
    clock: FakeClock,
    workers: list[WebhookWorker],
    *,
    until_ms: int,
    max_rounds: int = 20_000,
) -> list[int]:
    """Run the workers (concurrently) and jump the clock to the next due attempt whenever
    nothing is due, until nothing is pending or the clock would pass ``until_ms``.
    Returns the HTTP attempts each worker made."""
    attempts = [0] * len(workers)
    for _ in range(max_rounds):
        made = await asyncio.gather(*(w.run_once() for w in workers))
        attempts = [a + m for a, m in zip(attempts, made, strict=True)]
        if any(made):
            continue
        # Nothing attempted: one more claim round decides (a skipped no_endpoint event, or
        # an event just released by its predecessor, may still be due now).
        claims = await workers[0].claim(1)
        if claims:
            attempts[0] += int(await workers[0].attempt(claims[0]))
            continue
        due = await next_due_after(gateway, clock.now_ms())
        if due is None or due > until_ms:
            return attempts
        clock.set_ms(due)
    raise AssertionError("the delivery loop did not settle")


def mock_receiver(status: Callable[[str], int]) -> Callable[[], httpx.AsyncClient]:
    """A client factory whose transport answers ``status(eventId)`` with a short body."""

    def handler(request: httpx.Request) -> httpx.Response:
        code = status(request.headers["webhook-id"])
        return httpx.Response(code, content=f"got it ({code})".encode())

    return lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def deliver_all(
    gateway: GatewayContext, clock: FakeClock, status: Callable[[str], int], hours: int = 73
) -> None:
    """Deliver every due event to a mock receiver answering ``status(eventId)``, jumping the
    clock up to ``hours`` ahead through the retries."""
    async with make_worker(gateway, clock, http_client_factory=mock_receiver(status)) as worker:
        await drive(gateway, clock, [worker], until_ms=clock.now_ms() + hours * 3_600_000)
