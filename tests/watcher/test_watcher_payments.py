"""Orders paid on a real anvil node, credited by the watcher exactly once and only when final."""

from __future__ import annotations

import pytest
from tests.watcher.conftest import WatchEnv

pytestmark = pytest.mark.anvil


async def test_exact_payment_confirms_then_completes_when_final(env: WatchEnv) -> None:
    order = await env.order("10")
    tx = await env.pay(order, 10_000_000)
    await env.sync()
    seen = await env.reload(order.id)
    assert seen.status == "confirming"
    assert seen.pending_amount == 10_000_000 and seen.paid_amount == 0
    await env.finalize()
    await env.sync()
    done = await env.reload(order.id)
    assert done.status == "completed"
    assert done.exceptions == []
    assert done.paid_amount == 10_000_000 and done.pending_amount == 0
    assert done.tx_id == tx.lower()
    assert await env.events(order.id) == [
        "order.created",
        "order.payment_seen",
        "order.confirming",
        "order.completed",
    ]
    [payment] = await env.payments(order.id)
    assert payment.status == "final" and payment.kind == "credit" and payment.credited


async def test_two_partial_payments_add_up(env: WatchEnv) -> None:
    order = await env.order("10")
    await env.pay(order, 4_000_000)
    await env.sync()
    assert (await env.reload(order.id)).status == "pending"
    await env.pay(order, 6_000_000, customer=1)
    await env.sync()
    assert (await env.reload(order.id)).status == "confirming"
    await env.finalize()
    await env.sync()
    done = await env.reload(order.id)
    assert done.status == "completed" and done.exceptions == []
    assert done.paid_amount == 10_000_000
    assert await env.events(order.id) == [
        "order.created",
        "order.payment_seen",
        "order.payment_seen",
        "order.confirming",
        "order.completed",
    ]


async def test_restarted_watcher_resumes_and_credits_once(env: WatchEnv) -> None:
    order = await env.order("5")
    await env.pay(order, 5_000_000)
    await env.sync()
    await env.finalize()
    # A fresh watcher (a restart) waits out the dead one's lease, then resumes from the cursor.
    restarted = env.new_watcher()
    assert (await restarted.step()).outcome == "standby"
    env.clock.advance(16)
    await env.sync(restarted)
    env.clock.advance(16)
    await env.sync(env.new_watcher())
    assert (await env.reload(order.id)).status == "completed"
    assert len(await env.payments(order.id)) == 1
    assert (await env.events(order.id)).count("order.completed") == 1
