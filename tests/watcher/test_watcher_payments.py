"""Orders paid on a real anvil node, credited by the watcher exactly once and only when final."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount
from tests.watcher.conftest import WatchEnv

from stablegate.chain.evm.contracts import standard_token
from stablegate.chain.evm.wallet import transact

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


async def pass_expiry(env: WatchEnv, seconds: int = 120) -> None:
    """Move chain time past an order's expiry and make those blocks final."""
    await env.mine(1, seconds_apart=seconds)
    await env.mine(70)


async def test_underpaid_stays_pending_then_expires_underpaid(env: WatchEnv) -> None:
    order = await env.order("10", expire_seconds=60)
    await env.pay(order, 4_000_000)
    await env.sync()
    await env.finalize()
    await env.sync()
    short = await env.reload(order.id)
    assert short.status == "pending" and short.exceptions == ["underpaid"]
    assert short.paid_amount == 4_000_000
    await pass_expiry(env)
    await env.sync()
    expired = await env.reload(order.id)
    assert expired.status == "expired" and expired.exceptions == ["underpaid"]
    assert await env.events(order.id) == [
        "order.created",
        "order.payment_seen",
        "order.underpaid",
        "order.expired",
    ]


async def test_overpaid_completes_with_overpaid(env: WatchEnv) -> None:
    order = await env.order("10")
    await env.pay(order, 12_500_000)
    await env.sync()
    await env.finalize()
    await env.sync()
    done = await env.reload(order.id)
    assert done.status == "completed" and done.exceptions == ["overpaid"]
    assert done.paid_amount == 12_500_000


async def test_within_tolerance_completes_marked_underpaid(env: WatchEnv) -> None:
    await env.set_policy(tolerance_ppm=10_000)  # 1 %
    order = await env.order("10")
    await env.pay(order, 9_950_000)
    await env.sync()
    assert (await env.reload(order.id)).status == "confirming"
    await env.finalize()
    await env.sync()
    done = await env.reload(order.id)
    assert done.status == "completed" and done.exceptions == ["underpaid"]
    # Below the tolerance is not enough.
    other = await env.order("10")
    await env.pay(other, 9_899_999)
    await env.sync()
    await env.finalize()
    await env.sync()
    assert (await env.reload(other.id)).status == "pending"


@pytest.mark.parametrize(("policy", "status"), [("record", "expired"), ("complete", "completed")])
async def test_paid_late_by_policy(env: WatchEnv, policy: str, status: str) -> None:
    await env.set_policy(late_payment=policy)
    order = await env.order("10", expire_seconds=60)
    await pass_expiry(env)
    await env.sync()
    assert (await env.reload(order.id)).status == "expired"
    await env.pay(order, 10_000_000)
    await env.sync()
    assert (await env.reload(order.id)).status == "expired"  # nothing counts before final
    await env.finalize()
    await env.sync()
    late = await env.reload(order.id)
    assert late.status == status
    assert "paid_late" in late.exceptions
    assert late.paid_amount == 10_000_000
    [payment] = await env.payments(order.id)
    assert payment.late and payment.status == "final"  # recorded, never lost
    events = await env.events(order.id)
    assert events[:3] == ["order.created", "order.expired", "order.paid_late"]
    assert ("order.completed" in events) == (policy == "complete")


async def test_cancelled_then_paid_is_recorded_as_paid_late(env: WatchEnv) -> None:
    from stablegate.db.engine import session_scope
    from stablegate.orders.service import cancel_order

    order = await env.order("10")
    async with session_scope(env.sessions) as session:
        await cancel_order(
            session,
            env.clock,
            env.orders,
            merchant_id=env.merchant_id,
            order_id=order.id,
            order_no=None,
        )
    await env.pay(order, 10_000_000)
    await env.sync()
    await env.finalize()
    await env.sync()
    cancelled = await env.reload(order.id)
    assert cancelled.status == "cancelled" and cancelled.exceptions == ["paid_late"]
    assert cancelled.paid_amount == 10_000_000
    assert await env.events(order.id) == ["order.created", "order.cancelled", "order.paid_late"]


async def test_order_paid_in_time_is_not_expired_by_watcher_downtime(env: WatchEnv) -> None:
    order = await env.order("10", expire_seconds=60)
    await env.pay(order, 10_000_000)  # in time
    # The watcher is down while chain time runs far past the expiry.
    await env.mine(1, seconds_apart=600)
    await env.mine(100)
    env.clock.advance(600)
    await env.sync()
    done = await env.reload(order.id)
    assert done.status == "completed" and done.exceptions == []
    assert "order.expired" not in await env.events(order.id)


async def test_further_payment_after_completion_is_overpaid(env: WatchEnv) -> None:
    order = await env.order("10")
    await env.pay(order, 10_000_000)
    await env.sync()
    await env.finalize()
    await env.sync()
    await env.pay(order, 1_000_000)
    await env.sync()
    await env.finalize()
    await env.sync()
    done = await env.reload(order.id)
    assert done.status == "completed" and done.exceptions == ["overpaid"]
    assert done.paid_amount == 11_000_000
    assert (await env.events(order.id))[-1] == "order.overpaid"


async def test_another_registry_token_is_a_wrong_token_exception_never_a_payment(
    env: WatchEnv,
) -> None:
    order = await env.order("10")
    await env.pay(order, 10_000_000, symbol="USDC")
    await env.sync()
    seen = await env.reload(order.id)
    assert seen.status == "pending" and seen.exceptions == ["wrong_token"]
    assert seen.pending_amount == 0
    assert await env.events(order.id) == ["order.created", "order.wrong_token"]
    await env.finalize()
    await env.sync()
    [payment] = await env.payments(order.id)
    assert payment.kind == "wrong_token" and payment.status == "final" and not payment.credited
    after = await env.reload(order.id)
    assert after.status == "pending" and after.exceptions == ["wrong_token"]
    assert after.paid_amount == 0 and after.pending_amount == 0
    assert await env.events(order.id) == ["order.created", "order.wrong_token"]

    # The order's own token then pays it as usual; the exception stays for the merchant.
    await env.pay(order, 10_000_000)
    await env.sync()
    await env.finalize()
    await env.sync()
    done = await env.reload(order.id)
    assert done.status == "completed" and done.exceptions == ["wrong_token"]
    assert done.paid_amount == 10_000_000
    assert await env.events(order.id) == [
        "order.created",
        "order.wrong_token",
        "order.payment_seen",
        "order.confirming",
        "order.completed",
    ]


async def test_a_token_outside_the_registry_is_recorded_quietly(
    env: WatchEnv, deployer_account: LocalAccount
) -> None:
    """Spam and address poisoning: a worthless token sent to the deposit address tells nobody."""
    spam = standard_token()
    receipt = await transact(
        env.rpc, deployer_account, None, spam.deploy_code("Tether USD", "USDT", 6)
    )
    token = receipt["contractAddress"]
    await transact(
        env.rpc, deployer_account, token, spam.encode_call("mint", deployer_account.address, 10**9)
    )
    order = await env.order("10")
    await transact(
        env.rpc, deployer_account, token, spam.encode_call("transfer", order.to_address, 10**7)
    )
    await env.sync()
    await env.finalize()
    await env.sync()
    [payment] = await env.payments(order.id)
    assert payment.kind == "unsupported_token" and not payment.credited
    quiet = await env.reload(order.id)
    assert quiet.status == "pending" and quiet.exceptions == []
    assert quiet.paid_amount == 0 and quiet.pending_amount == 0
    assert await env.events(order.id) == ["order.created"]


async def test_dust_of_the_orders_token_below_min_credit_tells_nobody(env: WatchEnv) -> None:
    tokens = tuple(
        replace(t, min_credit=1_000) if t.symbol == "USDT" else t for t in env.chain.tokens
    )
    env.watcher.chain = replace(env.chain, tokens=tokens)
    order = await env.order("10")
    await env.pay(order, 0)  # zero-value transfers are the usual address-poisoning trick
    await env.pay(order, 999)
    await env.sync()
    await env.finalize()
    await env.sync()
    assert [p.kind for p in await env.payments(order.id)] == ["below_min", "below_min"]
    quiet = await env.reload(order.id)
    assert quiet.status == "pending" and quiet.pending_amount == 0 and quiet.paid_amount == 0
    assert await env.events(order.id) == ["order.created"]
