"""One shared poll per process for every order someone is watching live.

Each live-status stream subscribes to its order. A single background task, started with the
first subscriber and stopped when none remain, loads the rows of every watched order (the order,
its payments, its merchant's branding, its chain's head) in four queries per tick whatever the
number of orders (plain columns, no ORM objects). Only rows that differ from the previous tick's,
or an order with a new subscriber, is rendered into its public view and offered to that order's
subscribers; a subscriber wakes only when the view differs from the one its stream last sent
(``serverTime`` aside). Database load therefore grows with the poll rate, not with the number of
viewers, and a quiet tick costs little more than its query. A failed tick is logged and retried
on the next one; the streams keep their heartbeats meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.cashier.method_picker import NO_CHOICE, MethodPicker, cashier_order_view
from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.db.engine import read_scope
from stablegate.orders import queries
from stablegate.orders.queries import PublicOrderRows
from stablegate.orders.view import detached

log = structlog.get_logger("stablegate.cashier")

View = dict[str, Any]
# The rows of the given order ids (anything comparable with ==); an id left out is gone.
RowsLoader = Callable[[Collection[str]], Awaitable[Mapping[str, Any]]]
# A row to its public view.
Render = Callable[[Any], View]
GONE = ""  # the key of an order that no longer exists
_UNSEEN = object()  # no row loaded yet


def view_key(view: View | None) -> str:
    """What decides whether a view changed: everything but the server's clock."""
    if view is None:
        return GONE
    return json.dumps({k: v for k, v in view.items() if k != "serverTime"}, sort_keys=True)


class Subscription:
    """One stream's interest in one order: the latest view offered, and whether it is news."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self._latest: View | None = None
        self._latest_key: str | None = None  # None: nothing offered yet
        self._sent_key: str | None = None
        self._news = asyncio.Event()

    def offer(self, view: View | None, key: str | None = None) -> None:
        self._latest = view
        self._latest_key = view_key(view) if key is None else key
        if self._latest_key != self._sent_key:
            self._news.set()
        else:
            self._news.clear()

    async def next_change(self, within: float) -> tuple[bool, View | None]:
        """``(True, view)`` once the view differs from the last one returned (``view`` is None
        when the order is gone), or ``(False, None)`` after ``within`` seconds without news."""
        if not self._news.is_set():
            try:
                await asyncio.wait_for(self._news.wait(), within)
            except TimeoutError:
                return False, None
        self._news.clear()
        self._sent_key = self._latest_key
        return True, self._latest


class LiveOrders:
    def __init__(self, load: RowsLoader, render: Render, *, interval: float = 1.0) -> None:
        self.interval = interval
        self.ticks = 0  # completed polls, for tests and metrics
        self._load = load
        self._render = render
        self._subscribers: dict[str, set[Subscription]] = {}
        self._rows: dict[str, Any] = {}  # each watched order's row at the last tick
        self._fresh: set[str] = set()  # orders with a subscriber the poll has not offered to
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._failing = False

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def watched(self) -> int:
        return len(self._subscribers)

    def subscribe(self, order_id: str) -> Subscription:
        subscription = Subscription(order_id)
        self._subscribers.setdefault(order_id, set()).add(subscription)
        # Its first view came from its own read, which may be older than the last tick's row.
        self._fresh.add(order_id)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-orders")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        watchers = self._subscribers.get(subscription.order_id)
        if watchers is None:
            return
        watchers.discard(subscription)
        if not watchers:
            del self._subscribers[subscription.order_id]
            self._rows.pop(subscription.order_id, None)
        if not self._subscribers:
            self._wake.set()  # the poll ends now instead of after its sleep

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
                if not self._subscribers:
                    break
                await self._tick()
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _tick(self) -> None:
        order_ids = list(self._subscribers)
        try:
            rows = await self._load(order_ids)
        except Exception as exc:  # the poll must outlive a database outage
            if not self._failing:
                log.warning("live_orders_poll_failed", error=str(exc), orders=len(order_ids))
            self._failing = True
            return
        if self._failing:
            log.info("live_orders_poll_recovered", orders=len(order_ids))
            self._failing = False
        self.ticks += 1
        fresh, self._fresh = self._fresh, set()
        for order_id in order_ids:
            watchers = self._subscribers.get(order_id)
            if not watchers:
                continue
            row = rows.get(order_id)
            if row == self._rows.get(order_id, _UNSEEN) and order_id not in fresh:
                continue
            self._rows[order_id] = row  # logged once per change if it cannot be rendered
            try:
                view = None if row is None else self._render(row)
            except Exception as exc:  # one bad order must not stop every stream's updates
                log.error("live_orders_render_failed", order_id=order_id, error=str(exc))
                continue
            key = view_key(view)
            for subscription in watchers:
                subscription.offer(view, key)


def app_live_orders(request: Request) -> LiveOrders:
    """The poll of the app serving ``request`` (put in ``app.state`` by the app)."""
    live: LiveOrders = request.app.state.live_orders
    return live


def database_views(
    sessions: async_sessionmaker[AsyncSession],
    registry: ChainRegistry,
    public_url: str,
    clock: Clock,
    picker: MethodPicker = NO_CHOICE,
) -> tuple[RowsLoader, Render]:
    """How the gateway polls: the watched orders' rows in one read-only transaction, and their
    public views rendered from detached ORM objects built from the rows (no address while the
    customer has a payment method to choose)."""

    async def load(order_ids: Collection[str]) -> dict[str, PublicOrderRows]:
        async with read_scope(sessions) as session:
            return await queries.public_order_rows(session, order_ids)

    def render(rows: PublicOrderRows) -> View:
        order, parts = detached(rows)
        return cashier_order_view(order, registry, public_url, clock.now_ms(), parts, picker)

    return load, render
