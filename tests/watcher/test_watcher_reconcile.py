"""Reconciliation: deposit balances at the final block against recorded inflows and sweeps."""

from __future__ import annotations

import pytest
from eth_account import Account
from tests.watcher.conftest import WatchEnv

from stablegate.chain.evm.contracts import forwarder_factory
from stablegate.chain.evm.rpc import transact
from stablegate.db.engine import session_scope
from stablegate.models import ChainState

pytestmark = pytest.mark.anvil


async def test_balances_match_records_until_funds_leave_without_the_gateway(env: WatchEnv) -> None:
    paid = await env.order("10")
    await env.order("3")  # never paid: its zero balance must match too
    await env.pay(paid, 10_000_000)
    await env.finalize()
    await env.sync()
    report = await env.watcher.reconcile_now()
    assert report.checked == 2 * len(env.chain.tokens)
    assert report.mismatches == []

    # The merchant collects with the factory directly (no sweeper record): the gateway notices.
    collector = Account.create()
    await env.rpc.call("anvil_setBalance", [collector.address, hex(10**18)])
    salt = bytes.fromhex(paid.deposit_salt[2:])
    call = forwarder_factory().encode_call(
        "deployAndFlushOne", paid.payout_address, salt, env.tokens["USDT"]
    )
    await transact(env.rpc, collector, env.chain.factory, call)
    await env.finalize()
    await env.sync()
    report = await env.watcher.reconcile_now()
    [mismatch] = report.mismatches
    assert mismatch.deposit_address == paid.to_address.lower()
    assert (mismatch.on_chain, mismatch.expected) == (0, 10_000_000)
    async with session_scope(env.sessions) as session:
        state = await session.get(ChainState, env.chain.id)
        assert state is not None and state.reconcile_mismatches == 1
