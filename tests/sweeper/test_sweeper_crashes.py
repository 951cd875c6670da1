"""A sweeper killed at any point neither loses nor repeats a flush; stuck transactions get their
fee raised (same nonce) up to the cap; fees above the cap or the budget send nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from structlog.testing import capture_logs
from tests.sweeper.conftest import SweepEnv

from stablegate.models import Order, SweepTx
from stablegate.sweeper.options import GWEI
from stablegate.sweeper.reports import SweepOutcome
from stablegate.sweeper.worker import ChainSweeper

pytestmark = pytest.mark.anvil

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Killed(Exception):
    """The process died here."""


def kill_before_broadcast(sweeper: ChainSweeper, monkeypatch: pytest.MonkeyPatch) -> None:
    async def die(*_args: object) -> None:
        raise Killed

    monkeypatch.setattr(sweeper.in_flight, "broadcast", die)


async def assert_swept_exactly_once(sweep_env: SweepEnv, orders: list[Order]) -> None:
    """One ItemFlushed per deposit on chain, and the recorded totals equal the payments."""
    items = {i.deposit_address: i for i in await sweep_env.items()}
    for order in orders:
        flushed = await sweep_env.flush_events(order.to_address)
        assert [e["amount"] for e in flushed] == [order.paid_amount]
        assert items[order.to_address].status == "done"
        assert items[order.to_address].swept_amount == order.paid_amount
        assert await sweep_env.balance(order.symbol, order.to_address) == 0


@pytest_asyncio.fixture
async def manual_mining(sweep_env: SweepEnv) -> AsyncIterator[None]:
    await sweep_env.watch.rpc.call("evm_setAutomine", [False])
    yield
    await sweep_env.watch.rpc.call("evm_setAutomine", [True])  # not part of the snapshot


async def test_killed_after_signing_before_broadcast(
    sweep_env: SweepEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = await sweep_env.final_orders([("USDT", 3_000_000), ("USDT18", 2 * 10**18)])
    doomed = sweep_env.sweeper()
    kill_before_broadcast(doomed, monkeypatch)
    with pytest.raises(Killed):
        await doomed.step()
    [tx] = await sweep_env.txs()
    assert tx.status == "signed" and tx.raw_tx.startswith("0x02")
    assert {i.status for i in await sweep_env.items()} == {"sent"}
    assert await sweep_env.watch.rpc.call("eth_getTransactionByHash", [tx.tx_hash]) is None

    sweep_env.watch.clock.advance(31)  # the dead one's lease runs out
    restarted = sweep_env.sweeper()
    reports = await sweep_env.sweep(restarted)
    assert reports[0].outcome is SweepOutcome.WAITING  # re-broadcast the stored transaction
    assert [t.tx_hash for t in await sweep_env.txs()] == [tx.tx_hash]  # nothing new signed
    assert (await sweep_env.txs())[0].status == "mined"
    await assert_swept_exactly_once(sweep_env, orders)


async def test_killed_after_broadcast_before_the_receipt(sweep_env: SweepEnv) -> None:
    orders = await sweep_env.final_orders([("USDC", 5_000_000), ("USDT", 1_000_000)])
    doomed = sweep_env.sweeper()
    assert (await doomed.step()).outcome is SweepOutcome.SENT  # mined, never read back
    [tx] = await sweep_env.txs()
    assert tx.status == "broadcast"

    sweep_env.watch.clock.advance(31)
    restarted = sweep_env.sweeper()
    reports = await sweep_env.sweep(restarted)
    assert [len(r.settled) for r in reports if r.settled] == [2]
    [settled] = await sweep_env.txs()
    assert settled.tx_hash == tx.tx_hash and settled.status == "mined"
    await assert_swept_exactly_once(sweep_env, orders)
    sweep_env.watch.clock.advance(3600)
    await sweep_env.sweep(restarted)
    assert len(await sweep_env.txs()) == 1


@SQLITE_ONLY
@pytest.mark.usefixtures("manual_mining")
async def test_fee_bump_replaces_a_transaction_that_is_not_mined(sweep_env: SweepEnv) -> None:
    watch = sweep_env.watch
    orders = await mined_final_orders(sweep_env, [("USDC", 2_000_000), ("USDT18", 10**18)])
    sweeper = sweep_env.sweeper()
    assert (await sweeper.step()).outcome is SweepOutcome.SENT
    [first] = await sweep_env.txs()
    assert (await sweeper.step()).outcome is SweepOutcome.WAITING  # re-sent, not yet bumped
    watch.clock.advance(61)
    with capture_logs() as logs:
        assert (await sweeper.step()).outcome is SweepOutcome.BUMPED
    [bumped] = await sweep_env.txs()
    assert bumped.nonce == first.nonce and bumped.tx_hash != first.tx_hash
    assert bumped.replaced_hashes == first.tx_hash
    assert bumped.max_fee_per_gas * 8 >= first.max_fee_per_gas * 9
    assert bumped.max_priority_fee_per_gas * 8 >= first.max_priority_fee_per_gas * 9
    assert [e["event"] for e in logs if e["event"].startswith("sweep_fee")] == ["sweep_fee_bumped"]

    await watch.rpc.call("evm_mine", [])
    await sweep_env.sweep(sweeper)
    [mined] = await sweep_env.txs()
    assert mined.status == "mined" and mined.tx_hash == bumped.tx_hash
    assert await watch.rpc.call("eth_getTransactionReceipt", [first.tx_hash]) is None
    await assert_swept_exactly_once(sweep_env, orders)


@SQLITE_ONLY
@pytest.mark.usefixtures("manual_mining")
async def test_an_earlier_fee_level_may_be_the_one_that_mines(
    sweep_env: SweepEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = sweep_env.watch
    orders = await mined_final_orders(sweep_env, [("USDT", 4_000_000)])
    doomed = sweep_env.sweeper()
    assert (await doomed.step()).outcome is SweepOutcome.SENT
    [first] = await sweep_env.txs()
    watch.clock.advance(61)
    kill_before_broadcast(doomed, monkeypatch)  # the bump is stored, then the process dies
    with pytest.raises(Killed):
        await doomed.step()
    [stored] = await sweep_env.txs()
    assert stored.replaced_hashes == first.tx_hash and stored.status == "signed"

    await watch.rpc.call("evm_mine", [])  # the first fee level mines
    watch.clock.advance(31)
    await sweep_env.sweep(sweep_env.sweeper())
    [mined] = await sweep_env.txs()
    assert mined.status == "mined" and mined.tx_hash == first.tx_hash
    assert mined.replaced_hashes == stored.tx_hash
    await assert_swept_exactly_once(sweep_env, orders)


@SQLITE_ONLY
@pytest.mark.usefixtures("manual_mining")
async def test_no_fee_bump_beyond_the_cap(sweep_env: SweepEnv) -> None:
    await mined_final_orders(sweep_env, [("USDC", 1_000_000)])
    sweeper = sweep_env.sweeper()
    assert (await sweeper.step()).outcome is SweepOutcome.SENT
    [tx] = await sweep_env.txs()
    capped = sweep_env.sweeper(sweeper.lease.holder, max_fee_per_gas=tx.max_fee_per_gas)
    sweep_env.watch.clock.advance(61)
    with capture_logs() as logs:
        assert (await capped.step()).outcome is SweepOutcome.WAITING
    assert "sweep_fee_at_cap" in [e["event"] for e in logs]
    [same] = await sweep_env.txs()
    assert same.tx_hash == tx.tx_hash and same.replaced_hashes == ""


@SQLITE_ONLY
async def test_gas_cap_budget_and_relayer_balance_hold_back_a_batch(sweep_env: SweepEnv) -> None:
    watch = sweep_env.watch
    [order] = await sweep_env.final_orders([("USDT18", 10**18)])
    await watch.rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(200 * GWEI)])
    await watch.mine()
    sweeper = sweep_env.sweeper()
    assert (await sweeper.step()).detail == "gas above cap"
    assert await sweep_env.txs() == []

    await watch.rpc.call("anvil_setNextBlockBaseFeePerGas", [hex(GWEI)])
    await watch.mine()
    tight = sweep_env.sweeper(sweeper.lease.holder, budget_wei=10**12)
    report = await tight.step()
    assert report.outcome is SweepOutcome.BLOCKED and report.detail == "budget exhausted"

    await watch.rpc.call("anvil_setBalance", [sweep_env.relayer.address, hex(10**9)])
    with capture_logs() as logs:
        report = await sweeper.step()
    assert report.outcome is SweepOutcome.BLOCKED and report.detail == "relayer underfunded"
    assert [e["alert"] for e in logs if e["event"] == "operator_alert"] == [
        "relayer balance too low for a sweep transaction"
    ]
    assert await sweep_env.txs() == []
    assert [i.status for i in await sweep_env.items()] == ["pending"]

    await watch.rpc.call("anvil_setBalance", [sweep_env.relayer.address, hex(10**18)])
    await sweep_env.sweep(sweeper)
    assert await sweep_env.balance("USDT18", order.to_address) == 0
    [tx] = await sweep_env.txs()
    assert isinstance(tx, SweepTx) and tx.status == "mined"


async def mined_final_orders(sweep_env: SweepEnv, plan: list[tuple[str, int]]) -> list[Order]:
    """final_orders() with automine off: mine each payment by hand."""
    watch = sweep_env.watch
    await watch.rpc.call("evm_setAutomine", [True])
    try:
        return await sweep_env.final_orders(plan)
    finally:
        await watch.rpc.call("evm_setAutomine", [False])
