"""A step records at most ``max_transfers`` transfers, in whole blocks, so its write transaction
stays short however long the backlog: a watcher restarted before each long step commits would
otherwise never move on (and would hold SQLite's write lock for seconds)."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from tests.watcher.conftest import WatchEnv

from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.transfers import TransferLog
from stablegate.chain.evm.wallet import send_transaction, wait_receipt
from stablegate.models import Order
from stablegate.watcher.reports import StepOutcome
from stablegate.watcher.scan import cut_block


def _transfer(block: int, index: int) -> TransferLog:
    return TransferLog(
        token="0x" + "11" * 20,
        sender="0x" + "22" * 20,
        recipient="0x" + "33" * 20,
        amount=1,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        tx_hash="0x" + f"{block * 100 + index:064x}",
        log_index=index,
    )


def test_cut_keeps_whole_blocks_and_always_one() -> None:
    transfers = [_transfer(b, i) for b, n in ((12, 2), (15, 3), (20, 1)) for i in range(n)]
    # The 3rd transfer is in block 15: stop before it (block 14; 13 and 14 are empty).
    assert cut_block(transfers, 10, 2) == 14
    # The 4th is in block 15 too: still stop before the block, never inside it.
    assert cut_block(transfers, 10, 3) == 14
    # The 6th is in block 20: blocks 12 and 15 (five transfers) fit.
    assert cut_block(transfers, 10, 5) == 19
    # A first block holding more than the limit is still taken whole, or nothing would move.
    assert cut_block(transfers, 12, 1) == 12


async def _pay_in_one_block(env: WatchEnv, orders: list[tuple[Order, int, LocalAccount]]) -> None:
    """All the transfers in the same new block."""
    await env.rpc.call("evm_setAutomine", [False])
    try:
        hashes = [
            await send_transaction(
                env.rpc,
                customer,
                env.tokens[order.symbol],
                tether_token().encode_call("transfer", order.to_address, units),
                gas=100_000,
            )
            for order, units, customer in orders
        ]
        await env.mine(1)
    finally:
        await env.rpc.call("evm_setAutomine", [True])
    for tx_hash in hashes:
        assert (await wait_receipt(env.rpc, tx_hash))["status"] == "0x1"


async def test_a_backlog_is_recorded_a_few_transfers_per_step(env: WatchEnv) -> None:
    first, second = await env.order("5"), await env.order("9")
    # Blocks with 1, 3 (one block), 1 and 1 transfers, all final before the watcher looks.
    await env.pay(first, 1_000_000)
    await _pay_in_one_block(
        env,
        [
            (first, 1_000_000, env.customers[0]),
            (first, 1_000_000, env.customers[1]),
            (second, 3_000_000, env.customers[2]),
        ],
    )
    await env.pay(first, 2_000_000)
    await env.pay(second, 6_000_000)
    await env.finalize()

    watcher = env.new_watcher(max_transfers=2)
    env.clock.advance(16)  # the fixture's watcher holds the lease
    reports = await env.sync(watcher)
    moved = [r for r in reports if r.outcome == StepOutcome.ADVANCED]
    # 1 (the next block holds 3: cut before it), 3 (one block over the limit, taken whole),
    # then 1 + 1 = 2 fit in one step.
    assert [r.transfers for r in moved if r.transfers] == [1, 3, 2]
    assert all(r.to_block is not None for r in moved)
    ends = [r.to_block for r in moved]
    assert ends == sorted(ends) and len(set(ends)) == len(ends), "the cursor only moves on"

    for order, paid in ((first, 5_000_000), (second, 9_000_000)):
        reloaded = await env.reload(order.id)
        assert (reloaded.status, reloaded.paid_amount) == ("completed", paid)
        assert reloaded.pending_amount == 0
    assert len(await env.payments()) == 6, "each transfer recorded once"
    assert (await env.events(first.id)).count("order.completed") == 1


async def test_unfinal_blocks_are_cut_the_same_way(env: WatchEnv) -> None:
    order = await env.order("4")
    for _ in range(4):
        await env.pay(order, 1_000_000)
    watcher = env.new_watcher(max_transfers=1)
    env.clock.advance(16)
    reports = await env.sync(watcher)
    assert [r.transfers for r in reports if r.transfers] == [1, 1, 1, 1]
    await env.finalize()
    await env.sync(watcher)
    reloaded = await env.reload(order.id)
    assert (reloaded.status, reloaded.paid_amount) == ("completed", 4_000_000)
    assert len(await env.payments(order.id)) == 4
