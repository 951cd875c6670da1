"""The shared poll: one load per tick for every watched order, however many watch them; only the
subscribers whose order changed wake; it starts with the first subscriber and stops after the
last. (The database side, one statement per tick at 10 and 1,000 streams, is in
test_cashier_stream_caps.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from stablegate.cashier.live import LiveOrders

View = dict[str, Any]


class Orders:
    """Order views in memory, and every load the poll asked for."""

    def __init__(self) -> None:
        self.views: dict[str, View] = {}
        self.loads: list[list[str]] = []

    async def load(self, order_ids: Collection[str]) -> dict[str, View]:
        self.loads.append(sorted(order_ids))
        return {i: dict(self.views[i]) for i in order_ids if i in self.views}

    def set(self, order_id: str, status: str, server_time: int = 0) -> None:
        self.views[order_id] = {"orderId": order_id, "status": status, "serverTime": server_time}


async def after_ticks(live: LiveOrders, count: int) -> None:
    target = live.ticks + count
    for _ in range(1000):
        if live.ticks >= target:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the poll did not tick {count} times")


async def test_one_load_per_tick_for_all_watched_orders() -> None:
    orders = Orders()
    for n in range(3):
        orders.set(f"o{n}", "pending")
    live = LiveOrders(orders.load, dict, interval=0.01)
    assert not live.running
    subscriptions = [live.subscribe(f"o{n % 3}") for n in range(30)]
    for subscription in subscriptions:
        subscription.offer(orders.views[subscription.order_id])
        assert await subscription.next_change(0) == (True, orders.views[subscription.order_id])
    assert live.running and live.watched == 3

    await after_ticks(live, 3)
    # 30 subscribers, 3 orders: each tick is one load of the 3 ids.
    assert orders.loads[-1] == ["o0", "o1", "o2"]
    assert all(load == ["o0", "o1", "o2"] for load in orders.loads)
    # serverTime alone is no news.
    orders.set("o1", "pending", server_time=99)
    await after_ticks(live, 2)
    assert [await s.next_change(0) for s in subscriptions] == [(False, None)] * 30

    orders.set("o1", "confirming")
    watching_o1 = [s for s in subscriptions if s.order_id == "o1"]
    assert len(watching_o1) == 10
    for subscription in watching_o1:
        changed, view = await subscription.next_change(5)
        assert changed and view is not None and view["status"] == "confirming"
    others = [s for s in subscriptions if s.order_id != "o1"]
    assert [await s.next_change(0) for s in others] == [(False, None)] * 20

    for subscription in subscriptions:
        live.unsubscribe(subscription)
    for _ in range(500):
        if not live.running:
            break
        await asyncio.sleep(0.01)
    assert not live.running and live.watched == 0


async def test_a_failed_poll_is_retried_and_a_gone_order_ends_its_subscribers() -> None:
    orders = Orders()
    orders.set("o1", "pending")
    failures = 2

    async def flaky(order_ids: Collection[str]) -> dict[str, View]:
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("database unreachable")
        return await orders.load(order_ids)

    live = LiveOrders(flaky, dict, interval=0.01)
    subscription = live.subscribe("o1")
    subscription.offer(orders.views["o1"])
    await subscription.next_change(0)
    del orders.views["o1"]
    assert await subscription.next_change(5) == (True, None)
    assert failures == 0 and live.running
    live.unsubscribe(subscription)
    await live.stop()


async def test_an_order_that_cannot_be_rendered_does_not_stop_the_others() -> None:
    orders = Orders()
    orders.set("good", "pending")
    orders.set("bad", "pending")

    def render(view: View) -> View:
        if view["orderId"] == "bad" and view["status"] == "confirming":
            raise ValueError("a row the view cannot show")
        return view

    live = LiveOrders(orders.load, render, interval=0.01)
    good, bad = live.subscribe("good"), live.subscribe("bad")
    await after_ticks(live, 2)
    assert (await good.next_change(0))[0]  # the first view, from the first tick
    orders.set("bad", "confirming")  # this one now fails to render, every tick
    await after_ticks(live, 2)
    assert live.running
    orders.set("good", "confirming")
    changed, view = await good.next_change(5)
    assert changed and view is not None and view["status"] == "confirming"
    live.unsubscribe(good)
    live.unsubscribe(bad)
