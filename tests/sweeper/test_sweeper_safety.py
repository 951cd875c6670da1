"""The relayer key can move funds only to payout addresses; one sweeper per chain writes.

The contracts' own guarantee, that no function of the factory or the forwarder called by anyone
(the relayer included) sends funds anywhere but the payout, is shown call by call in
tests/chain/evm/test_contracts_onchain.py::test_no_call_by_anyone_else_moves_funds_anywhere_but_the_payout.
Here: what a tampered database can and cannot make the sweeper do.
"""

from __future__ import annotations

import pytest
from eth_utils.address import to_checksum_address
from structlog.testing import capture_logs
from tests.sweeper.conftest import SweepEnv, fresh_account

from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import forwarder_factory
from stablegate.chain.evm.wallet import transact
from stablegate.db.engine import session_scope
from stablegate.leases import Fenced
from stablegate.models import Order
from stablegate.sweeper.batch import FlushItem, decode_reason, encode_batch, item_outcomes
from stablegate.sweeper.reports import SweepOutcome

pytestmark = pytest.mark.anvil


async def tamper(sweep_env: SweepEnv, order_id: str, **values: str) -> None:
    async with session_scope(sweep_env.watch.sessions) as session:
        order = await session.get(Order, order_id)
        assert order is not None
        for name, value in values.items():
            setattr(order, name, value)


async def test_a_tampered_payout_cannot_take_funds(sweep_env: SweepEnv) -> None:
    watch = sweep_env.watch
    attacker = fresh_account("attacker").address
    first, second = await sweep_env.final_orders([("USDT", 9_000_000), ("USDC", 4_000_000)])
    # 1. Only the payout is changed: the stored (payout, salt) no longer derive the deposit.
    await tamper(sweep_env, first.id, payout_address=attacker)
    # 2. Payout and deposit address changed together: the "deposit" is an empty forwarder.
    salt = bytes.fromhex(second.deposit_salt[2:]) if second.deposit_salt else b""
    fake_deposit = create2.forwarder_address(
        watch.chain.factory or "", watch.chain.implementation or "", attacker, salt
    )
    await tamper(sweep_env, second.id, payout_address=attacker, to_address=fake_deposit)

    with capture_logs() as logs:
        await sweep_env.sweep(sweep_env.sweeper())
    [item] = await sweep_env.items()
    assert item.deposit_address == first.to_address and item.payout_address == attacker
    assert item.status == "stuck"  # refused before signing anything
    assert item.last_error == "payout and salt do not derive the deposit address"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["operator_alert"]
    assert await sweep_env.txs() == []  # nothing for the second: its fake deposit holds nothing

    # Even when signed and sent (the relayer key, the sweeper's own encoding), the factory
    # derives the forwarder from (payout, salt): another, empty address; the funds stay.
    items = [
        FlushItem(attacker, bytes.fromhex(o.deposit_salt[2:]), o.token_address, o.to_address)
        for o in (first, second)
        if o.deposit_salt
    ]
    receipt = await transact(watch.rpc, sweep_env.relayer, watch.chain.factory, encode_batch(items))
    outcomes = item_outcomes(receipt, watch.chain.factory or "")
    assert [o.flushed for o in outcomes] == [False, False]
    for outcome, order in zip(outcomes, (first, second), strict=True):
        assert outcome.deposit_address != order.to_address
        reason = decode_reason(outcome.reason)
        assert reason is not None and reason.name == "NothingToFlush"
    assert await sweep_env.balance("USDT", first.to_address) == 9_000_000
    assert await sweep_env.balance("USDC", second.to_address) == 4_000_000
    assert await sweep_env.balance("USDT", attacker) == 0
    assert await sweep_env.balance("USDC", attacker) == 0


async def test_the_sweeper_only_ever_calls_deploy_and_flush_on_the_factory(
    sweep_env: SweepEnv,
) -> None:
    await sweep_env.final_orders([("USDT", 1_000_000), ("USDT18", 10**18)])
    await sweep_env.sweep(sweep_env.sweeper())
    selector = forwarder_factory().selector("deployAndFlush")
    for tx in await sweep_env.txs():
        sent = await sweep_env.watch.rpc.call("eth_getTransactionByHash", [tx.tx_hash])
        assert to_checksum_address(sent["to"]) == sweep_env.watch.chain.factory
        assert bytes.fromhex(sent["input"][2:10]) == selector
        assert int(sent["value"], 16) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_one_sweeper_per_chain_and_a_deposed_one_writes_nothing(
    sweep_env: SweepEnv,
) -> None:
    await sweep_env.final_orders([("USDC", 1_000_000)])
    first, second = sweep_env.sweeper(), sweep_env.sweeper()
    assert (await first.step()).outcome is SweepOutcome.SENT
    assert (await second.step()).outcome is SweepOutcome.STANDBY
    stale = first.lease.grant
    assert stale is not None
    sweep_env.watch.clock.advance(31)  # the first one paused past its lease
    await sweep_env.sweep(second)  # takes over and settles the first one's transaction
    await sweep_env.final_orders([("USDC", 2_000_000)])
    assert second.lease.grant is not None
    assert await second.discover(second.lease.grant) == 1  # a new item is due
    with pytest.raises(Fenced):
        await first.send_batch(stale)  # signed in memory, refused at the store: never sent
    assert [tx.status for tx in await sweep_env.txs()] == ["mined"]
    relayer = sweep_env.relayer.address
    assert await sweep_env.watch.rpc.call("eth_getTransactionCount", [relayer, "pending"]) == "0x1"
    assert [i.status for i in await sweep_env.items()] == ["done", "pending"]
    assert (await first.step()).outcome is SweepOutcome.STANDBY
    await sweep_env.sweep(second)
    assert [tx.status for tx in await sweep_env.txs()] == ["mined", "mined"]
