"""The unique_amount strategy: the payout address receives, the exact amount names the order."""

from __future__ import annotations

import pytest
from eth_account import Account
from tests.watcher.conftest import WatchEnv

from stablegate.chain.evm.contracts import forwarder_factory
from stablegate.chain.evm.wallet import transact
from stablegate.db.engine import session_scope
from stablegate.errors import Conflict
from stablegate.models import Merchant
from stablegate.orders import unique_amount

pytestmark = pytest.mark.anvil


async def use_unique_amount(env: WatchEnv) -> None:
    async with session_scope(env.sessions) as session:
        merchant = await session.get(Merchant, env.merchant_id)
        assert merchant is not None
        merchant.deposit_strategy = "unique_amount"


async def test_exact_amounts_name_their_orders_and_the_rest_is_unattributed(env: WatchEnv) -> None:
    # A forwarder order paid before the switch: its later sweep into the payout is no payment.
    swept = await env.order("10")
    await env.pay(swept, 10_000_000)
    await use_unique_amount(env)
    first = await env.order("10")
    second = await env.order("10")
    assert first.to_address == second.to_address == env.payout
    assert first.factory is None and first.deposit_salt is None
    assert first.amount != second.amount
    for order in (first, second):
        assert 10_000_000 < order.amount <= 10_009_999

    await env.pay(second, second.amount)
    await env.pay(first, 10_000_000)  # the bare amount matches no reservation
    collector = Account.create()
    await env.rpc.call("anvil_setBalance", [collector.address, hex(10**18)])
    salt = bytes.fromhex(swept.deposit_salt[2:])
    await transact(
        env.rpc,
        collector,
        env.chain.factory,
        forwarder_factory().encode_call(
            "deployAndFlushOne", swept.payout_address, salt, env.tokens["USDT"]
        ),
    )
    await env.finalize()
    await env.sync()

    assert (await env.reload(second.id)).status == "completed"
    assert (await env.reload(first.id)).status == "pending"
    everything = await env.payments()
    unattributed = [p for p in everything if p.kind == "unattributed"]
    assert [p.amount for p in unattributed] == [10_000_000]
    assert unattributed[0].order_id is None
    # The sweep out of the forwarder into the same payout address is no payment of the pooled
    # address: only the forwarder order's flush (for reconciliation).
    [flushed] = [p for p in everything if p.from_address == swept.to_address]
    assert (flushed.kind, flushed.order_id, flushed.amount) == ("flush", swept.id, 10_000_000)


async def test_no_free_offset_is_a_conflict(env: WatchEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    await use_unique_amount(env)
    monkeypatch.setattr(unique_amount, "MAX_OFFSET", 3)
    monkeypatch.setattr(unique_amount, "RANDOM_TRIES", 1)
    orders = [await env.order("7") for _ in range(3)]
    amounts = {o.amount for o in orders}
    ids = {o.id for o in orders}
    assert amounts == {7_000_001, 7_000_002, 7_000_003}
    with pytest.raises(Conflict) as refused:
        await env.order("7")
    assert refused.value.code == "no_free_offset"
    # Reservations lapse after 30 days; only then can an offset be reused.
    later = env.clock.now_ms() + 29 * 86_400_000
    async with session_scope(env.sessions) as session:
        with pytest.raises(Conflict):
            await unique_amount.reserve_amount(
                session,
                chain_id=env.chain.id,
                token=env.tokens["USDT"],
                address=env.payout,
                base_amount=7_000_000,
                decimals=6,
                order_id=next(iter(ids)),
                now_ms=later,
            )
    async with session_scope(env.sessions) as session:
        reused = await unique_amount.reserve_amount(
            session,
            chain_id=env.chain.id,
            token=env.tokens["USDT"],
            address=env.payout,
            base_amount=7_000_000,
            decimals=6,
            order_id=next(iter(ids)),
            now_ms=later + 2 * 86_400_000,
        )
    assert reused in amounts
