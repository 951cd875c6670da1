"""Reconciliation: deposit balances at the final block against the chain data the watcher
recorded (final inflows minus final flushes to the payout address, whoever sent them)."""

from __future__ import annotations

import asyncio

import pytest
from eth_account import Account
from sqlalchemy import delete
from stablegate_client import flush
from tests.watcher.conftest import WatchEnv
from tests.watcher.test_watcher_unique_amount import use_unique_amount

from stablegate.chain.evm.contracts import forwarder
from stablegate.chain.evm.wallet import transact
from stablegate.db.engine import session_scope
from stablegate.models import ChainState, Payment, SweepItem
from stablegate.models.payment import PaymentKind
from stablegate.models.sweep import SweepItemStatus

pytestmark = pytest.mark.anvil


async def mismatches_recorded(env: WatchEnv) -> int:
    async with session_scope(env.sessions) as session:
        state = await session.get(ChainState, env.chain.id)
        assert state is not None
        return state.reconcile_mismatches


async def test_a_merchants_own_flush_is_accounted_and_a_real_loss_still_alerts(
    env: WatchEnv,
) -> None:
    paid = await env.order("10")
    await env.order("3")  # never paid: its zero balance must match too
    await env.pay(paid, 10_000_000)
    await env.finalize()
    await env.sync()
    report = await env.watcher.reconcile_now()
    assert report.checked == 2 * len(env.chain.tokens)
    assert report.mismatches == []

    # The merchant collects with the SDK alone (no gateway, no sweeper record), from a fresh
    # key that holds only gas, as the client's README shows.
    collector = Account.create()
    await env.rpc.call("anvil_setBalance", [collector.address, hex(10**18)])
    assert paid.factory is not None and paid.deposit_salt is not None
    result = await asyncio.to_thread(
        flush,
        env.chain.rpc_urls[0],
        paid.factory,
        paid.payout_address,
        paid.deposit_salt,
        env.tokens["USDT"],
        collector.key,
    )
    assert result.amount == 10_000_000
    await env.finalize()
    await env.sync()
    report = await env.watcher.reconcile_now()
    assert report.mismatches == []
    assert await mismatches_recorded(env) == 0
    # The flush is chain data, not a payment: the order's payments and amounts are unchanged.
    flushes = [p for p in await env.payments(paid.id) if p.kind == "flush"]
    assert [(p.from_address, p.to_address, p.amount, p.status) for p in flushes] == [
        (paid.to_address, paid.payout_address, 10_000_000, "final")
    ]
    after = await env.reload(paid.id)
    assert after.status == "completed" and after.paid_amount == 10_000_000

    # Money that leaves for anywhere but the payout address is unaccounted for: it alerts.
    # (flushTo, the payout's own rescue, here sends a second payment to a stranger.)
    await env.pay(paid, 5_000_000)
    payout_key = next(c for c in env.customers if c.address == paid.payout_address)
    stranger = Account.create().address
    call = forwarder().encode_call("flushTo", env.tokens["USDT"], stranger)
    await transact(env.rpc, payout_key, paid.to_address, call)
    await env.finalize()
    await env.sync()
    report = await env.watcher.reconcile_now()
    [mismatch] = report.mismatches
    assert mismatch.deposit_address == paid.to_address.lower()
    assert mismatch.token == env.tokens["USDT"].lower()
    assert (mismatch.on_chain, mismatch.expected) == (0, 5_000_000)
    assert await mismatches_recorded(env) == 1


async def test_unique_amount_orders_are_not_reconciled(env: WatchEnv) -> None:
    """Their address is the merchant's own wallet: its balance is the merchant's business."""
    await use_unique_amount(env)
    order = await env.order("10")
    assert order.to_address == env.payout
    await env.pay(order, order.amount)
    await env.finalize()
    await env.sync()
    assert (await env.reload(order.id)).status == "completed"
    report = await env.watcher.reconcile_now()
    assert report.checked == 0 and report.mismatches == []


async def test_sweeps_made_before_flush_rows_existed_are_accounted(env: WatchEnv) -> None:
    """A gateway upgraded from a version that recorded no flush rows knows its earlier sweeps
    only from the sweep items: reconciliation must count those, not alert on every deposit."""
    paid = await env.order("10")
    await env.pay(paid, 10_000_000)
    await env.finalize()
    await env.sync()
    collector = Account.create()
    await env.rpc.call("anvil_setBalance", [collector.address, hex(10**18)])
    assert paid.factory is not None and paid.deposit_salt is not None
    await asyncio.to_thread(
        flush,
        env.chain.rpc_urls[0],
        paid.factory,
        paid.payout_address,
        paid.deposit_salt,
        env.tokens["USDT"],
        collector.key,
    )
    await env.finalize()
    await env.sync()
    # As the old version left it: no flush row, the sweeper's item says what it swept.
    async with session_scope(env.sessions) as session:
        await session.execute(delete(Payment).where(Payment.kind == PaymentKind.FLUSH))
        session.add(
            SweepItem(
                chain_id=env.chain.id,
                order_id=paid.id,
                deposit_address=paid.to_address,
                payout_address=paid.payout_address,
                deposit_salt=paid.deposit_salt,
                token_address=env.tokens["USDT"],
                status=SweepItemStatus.DONE,
                swept_amount=10_000_000,
                created_at_ms=0,
                updated_at_ms=0,
            )
        )
    report = await env.watcher.reconcile_now()
    assert report.mismatches == []
