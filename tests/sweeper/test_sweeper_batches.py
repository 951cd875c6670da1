"""Final funds swept to payout addresses in batches; paused tokens retried, barred payouts stuck."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from tests.sweeper.conftest import SweepEnv

from stablegate.chain.evm.wallet import to_int
from stablegate.db.engine import session_scope
from stablegate.sweeper import service
from stablegate.sweeper.reports import SweepOutcome

pytestmark = pytest.mark.anvil

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_final_funds_of_many_orders_reach_their_payouts_in_batches(
    sweep_env: SweepEnv,
) -> None:
    plan = [
        ("USDT", 10_000_000),
        ("USDC", 2_500_000),
        ("USDT18", 3 * 10**18 + 5 * 10**17),
        ("USDT", 1_000_000),
        ("USDC", 7_000_001),
        ("USDT18", 10**18),
        ("USDT", 123_456_789),
        ("USDC", 1_000_000),
        ("USDT18", 42 * 10**18 + 1),
        ("USDT", 5_000_000),
        ("USDC", 99_000_000),
        ("USDT18", 2 * 10**18),
    ]
    orders = await sweep_env.final_orders(plan)
    payout = sweep_env.watch.payout
    before = {s: await sweep_env.balance(s, payout) for s in ("USDT", "USDC", "USDT18")}
    relayer_before = await sweep_env.balance("native", sweep_env.relayer.address)

    with capture_logs() as logs:
        await sweep_env.sweep(sweep_env.sweeper(max_items=5))

    txs = await sweep_env.txs()
    assert [tx.status for tx in txs] == ["mined"] * 3  # 12 items, at most 5 per transaction
    assert [tx.nonce for tx in txs] == [0, 1, 2]
    items = await sweep_env.items()
    assert len(items) == 12 and len(txs) < len(items)
    assert {i.status for i in items} == {"done"}
    for symbol, held in before.items():
        expected = sum(units for s, units in plan if s == symbol)
        assert await sweep_env.balance(symbol, payout) - held == expected
    for order, (symbol, units) in zip(orders, plan, strict=True):
        assert await sweep_env.balance(symbol, order.to_address) == 0
        [flushed] = await sweep_env.flush_events(order.to_address)
        assert flushed["amount"] == units
        async with session_scope(sweep_env.watch.sessions) as session:
            [sweep] = await service.sweeps_for_order(session, order.id)
        assert sweep.status == "done" and sweep.swept_amount == units
        assert sweep.tx_hash in {tx.tx_hash for tx in txs}
        assert sweep.payout_address == payout
    fees = sum(tx.fee_paid or 0 for tx in txs)
    assert relayer_before - await sweep_env.balance("native", sweep_env.relayer.address) == fees
    batches = [entry for entry in logs if entry["event"] == "sweep_batch"]
    assert [b["items"] for b in batches] == [5, 5, 2]
    assert all(b["gas_used"] > 0 and b["fee_paid"] != "0" for b in batches)


async def test_an_order_with_only_a_seen_payment_is_not_swept(sweep_env: SweepEnv) -> None:
    watch = sweep_env.watch
    [final] = await sweep_env.final_orders([("USDC", 3_000_000)])
    seen = await watch.order("4", symbol="USDC")
    await watch.pay(seen, 4_000_000)
    await watch.sync()
    assert [p.status for p in await watch.payments(seen.id)] == ["seen"]

    sweeper = sweep_env.sweeper()
    await sweep_env.sweep(sweeper)
    assert [i.deposit_address for i in await sweep_env.items()] == [final.to_address]
    assert await sweep_env.balance("USDC", seen.to_address) == 4_000_000
    assert await sweep_env.flush_events(seen.to_address) == []

    # Once final, it is swept like any other.
    await watch.finalize()
    await watch.sync()
    await sweep_env.sweep(sweeper)
    assert await sweep_env.balance("USDC", seen.to_address) == 0
    assert [i.status for i in await sweep_env.items()] == ["done", "done"]


async def test_a_later_final_payment_reopens_the_done_item(sweep_env: SweepEnv) -> None:
    watch = sweep_env.watch
    [order] = await sweep_env.final_orders([("USDT18", 10**18)])
    sweeper = sweep_env.sweeper()
    await sweep_env.sweep(sweeper)
    await watch.pay(order, 2 * 10**18)  # overpaid, after the first sweep
    await watch.sync()
    await sweep_env.sweep(sweeper)
    assert len(await sweep_env.txs()) == 1  # seen only: not swept yet
    await watch.finalize()
    await watch.sync()
    await sweep_env.sweep(sweeper)
    [item] = await sweep_env.items()
    assert item.status == "done" and item.swept_amount == 3 * 10**18
    assert [e["amount"] for e in await sweep_env.flush_events(order.to_address)] == [
        10**18,
        2 * 10**18,
    ]


@SQLITE_ONLY
async def test_balances_below_the_minimum_wait(sweep_env: SweepEnv) -> None:
    orders = await sweep_env.final_orders([("USDT18", 5 * 10**17), ("USDC", 999_999)])
    first = sweep_env.sweeper()
    await sweep_env.sweep(first)  # default minimum: one whole token
    assert await sweep_env.items() == []
    token = sweep_env.watch.tokens["USDT18"]
    await sweep_env.sweep(sweep_env.sweeper(first.lease.holder, min_sweep={token: 10**17}))
    [item] = await sweep_env.items()
    assert item.deposit_address == orders[0].to_address and item.swept_amount == 5 * 10**17


async def test_paused_token_retries_without_reverting_the_batch(sweep_env: SweepEnv) -> None:
    usdt_order, usdc_order = await sweep_env.final_orders(
        [("USDT", 6_000_000), ("USDC", 2_000_000)]
    )
    await sweep_env.usdt("pause")
    sweeper = sweep_env.sweeper()
    reports = await sweep_env.sweep(sweeper)

    [tx] = await sweep_env.txs()
    receipt = await sweep_env.watch.rpc.call("eth_getTransactionReceipt", [tx.tx_hash])
    assert to_int(receipt["status"]) == 1  # one bad item never reverts the batch
    usdt_item, usdc_item = sorted(
        await sweep_env.items(), key=lambda i: i.token_address != sweep_env.watch.tokens["USDT"]
    )
    assert usdc_item.status == "done" and usdc_item.swept_amount == 2_000_000
    assert usdt_item.status == "retry" and usdt_item.attempts == 1
    assert usdt_item.last_error == "Error(Pausable: paused)"
    assert usdt_item.next_attempt_at_ms == sweep_env.watch.clock.now_ms() + 60_000
    assert {r.verdict for r in reports[1].settled} == {"done", "retry"}
    [failed] = await sweep_env.flush_events(usdt_order.to_address, "ItemFailed")
    assert failed["tx"] == tx.tx_hash

    # Not due yet: nothing is sent; once unpaused and due, it goes through.
    assert (await sweeper.step()).outcome is SweepOutcome.IDLE
    await sweep_env.usdt("unpause")
    sweep_env.watch.clock.advance(61)
    await sweep_env.sweep(sweeper)
    items = await sweep_env.items()
    assert {i.status for i in items} == {"done"}
    assert await sweep_env.balance("USDT", usdt_order.to_address) == 0
    assert [e["amount"] for e in await sweep_env.flush_events(usdt_order.to_address)] == [6_000_000]
    assert len(await sweep_env.flush_events(usdc_order.to_address)) == 1


@SQLITE_ONLY
async def test_an_item_failing_every_attempt_becomes_stuck(sweep_env: SweepEnv) -> None:
    [order] = await sweep_env.final_orders([("USDT", 2_000_000)])
    await sweep_env.usdt("pause")
    sweeper = sweep_env.sweeper(max_attempts=2)
    await sweep_env.sweep(sweeper)
    sweep_env.watch.clock.advance(61)
    with capture_logs() as logs:
        await sweep_env.sweep(sweeper)
    [item] = await sweep_env.items()
    assert item.status == "stuck" and item.attempts == 2
    [alert] = [e for e in logs if e["event"] == "operator_alert"]
    assert alert["deposit_address"] == order.to_address and alert["attempts"] == 2
    sweep_env.watch.clock.advance(3600)
    await sweep_env.sweep(sweeper)
    assert len(await sweep_env.txs()) == 2  # a stuck item is left alone


async def test_blacklisted_payout_is_stuck_with_an_alert(sweep_env: SweepEnv) -> None:
    watch = sweep_env.watch
    usdt_order, usdc_order = await sweep_env.final_orders(
        [("USDT", 8_000_000), ("USDC", 1_000_000)]
    )
    await sweep_env.usdt("addBlackList", watch.payout)
    sweeper = sweep_env.sweeper()
    with capture_logs() as logs:
        await sweep_env.sweep(sweeper)
    by_token = {i.token_address: i for i in await sweep_env.items()}
    stuck, done = by_token[watch.tokens["USDT"]], by_token[watch.tokens["USDC"]]
    assert stuck.status == "stuck" and stuck.attempts == 1  # permanent: no retries wasted
    assert stuck.last_error == "Error(Blacklistable: account is blacklisted)"
    assert done.status == "done"
    [alert] = [e for e in logs if e["event"] == "operator_alert"]
    assert alert["order_id"] == usdt_order.id and alert["payout_address"] == watch.payout
    assert alert["log_level"] == "error"
    assert await sweep_env.balance("USDT", usdt_order.to_address) == 8_000_000

    # The operator fixes the cause and re-queues the item.
    await sweep_env.usdt("removeBlackList", watch.payout)
    async with session_scope(watch.sessions) as session:
        assert await service.requeue_stuck(session, watch.clock, watch.chain.id) == 1
    await sweep_env.sweep(sweeper)
    assert await sweep_env.balance("USDT", usdt_order.to_address) == 0
    assert {i.status for i in await sweep_env.items()} == {"done"}
    assert len(await sweep_env.flush_events(usdc_order.to_address)) == 1


@SQLITE_ONLY
async def test_native_coin_is_collected_with_the_tokens(sweep_env: SweepEnv) -> None:
    watch = sweep_env.watch
    [order] = await sweep_env.final_orders([("USDC", 1_000_000)])
    await watch.rpc.call("anvil_setBalance", [order.to_address, hex(3 * 10**16)])
    before = await sweep_env.balance("native", watch.payout)
    await sweep_env.sweep(sweep_env.sweeper(native_min=10**16))
    items = await sweep_env.items()
    assert sorted((i.token_address, i.swept_amount) for i in items) == sorted(
        [(watch.tokens["USDC"], 1_000_000), ("0x" + "00" * 20, 3 * 10**16)]
    )
    assert await sweep_env.balance("native", watch.payout) - before == 3 * 10**16
    assert await sweep_env.balance("native", order.to_address) == 0


async def test_reconciliation_accounts_for_the_sweepers_flushes_from_chain_data(
    sweep_env: SweepEnv,
) -> None:
    watch = sweep_env.watch
    orders = await sweep_env.final_orders([("USDT", 4_000_000), ("USDC", 6_000_000)])
    await sweep_env.sweep(sweep_env.sweeper())
    assert {i.status for i in await sweep_env.items()} == {"done"}
    await watch.finalize()
    await watch.sync()
    report = await watch.watcher.reconcile_now()
    assert report.checked == 2 * len(watch.chain.tokens) and report.mismatches == []
    for order in orders:
        flushes = [p for p in await watch.payments(order.id) if p.kind == "flush"]
        assert [(p.to_address, p.status) for p in flushes] == [(order.payout_address, "final")]
