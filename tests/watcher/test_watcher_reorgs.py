"""Reorgs on anvil (anvil_reorg replaces recent blocks and emits no removed logs, so the
watcher must notice them by block hashes)."""

from __future__ import annotations

import pytest
from hexbytes import HexBytes
from tests.watcher.conftest import WatchEnv

from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.wallet import to_int, wait_receipt

pytestmark = pytest.mark.anvil


async def signed_transfer(env: WatchEnv, to: str, units: int) -> HexBytes:
    """A raw signed token transfer we can broadcast again after a reorg drops it."""
    customer = env.customers[0]
    nonce = to_int(await env.rpc.call("eth_getTransactionCount", [customer.address, "pending"]))
    base_fee = to_int(
        (await env.rpc.call("eth_getBlockByNumber", ["latest", False]))["baseFeePerGas"]
    )
    tx = {
        "chainId": 31337,
        "nonce": nonce,
        "to": env.tokens["USDT"],
        "data": tether_token().encode_call("transfer", to, units),
        "value": 0,
        "gas": 100_000,
        "maxFeePerGas": base_fee * 2 + 10**9,
        "maxPriorityFeePerGas": 10**9,
        "type": 2,
    }
    signed = customer.sign_transaction(tx)
    return HexBytes(signed.raw_transaction)


async def test_reorg_reverses_a_seen_payment_and_the_resent_tx_is_credited_once(
    env: WatchEnv,
) -> None:
    order = await env.order("10")
    raw = await signed_transfer(env, order.to_address, 10_000_000)
    tx_hash = await env.rpc.call("eth_sendRawTransaction", [raw.to_0x_hex()])
    await wait_receipt(env.rpc, tx_hash)
    await env.mine(2)
    await env.sync()
    assert (await env.reload(order.id)).status == "confirming"

    # Replace the last 3 blocks (the payment's among them) with empty ones.
    await env.rpc.call("anvil_reorg", [3, []])
    await env.sync()
    reverted = await env.reload(order.id)
    assert reverted.status == "pending"
    assert reverted.pending_amount == 0
    [orphan] = await env.payments(order.id)
    assert orphan.status == "orphaned"
    assert (await env.events(order.id))[-1] == "order.payment_reversed"

    # The same signed transaction mined again: same identity, revived, credited exactly once.
    await env.rpc.call("eth_sendRawTransaction", [raw.to_0x_hex()])
    await env.mine(1)
    await env.sync()
    await env.finalize()
    await env.sync()
    done = await env.reload(order.id)
    assert done.status == "completed" and done.paid_amount == 10_000_000
    [payment] = await env.payments(order.id)
    assert payment.status == "final" and payment.credited
    assert await env.events(order.id) == [
        "order.created",
        "order.payment_seen",
        "order.confirming",
        "order.payment_reversed",
        "order.payment_seen",
        "order.confirming",
        "order.completed",
    ]


async def test_reorg_deeper_than_finality_flags_the_completed_order(env: WatchEnv) -> None:
    # Keep the reorg above the test's snapshot block, so clean_chain can still revert.
    await env.mine(10)
    order = await env.order("10")
    await env.pay(order, 10_000_000)
    await env.finalize()
    await env.sync()
    assert (await env.reload(order.id)).status == "completed"
    # 75 blocks replaced: deeper than anvil's finalized tag (64 behind the head).
    await env.rpc.call("anvil_reorg", [75, []])
    await env.sync()
    flagged = await env.reload(order.id)
    assert flagged.status == "completed"
    assert "reversed_after_completion" in flagged.exceptions
    assert flagged.paid_amount == 0
    assert (await env.events(order.id))[-1] == "order.payment_reversed"


async def test_reorg_keeping_the_payment_changes_nothing_but_its_block(env: WatchEnv) -> None:
    order = await env.order("10")
    await env.pay(order, 10_000_000)
    await env.mine(3)
    await env.sync()
    # Replace only the 2 blocks after the payment.
    await env.rpc.call("anvil_reorg", [2, []])
    await env.sync()
    assert (await env.reload(order.id)).status == "confirming"
    await env.finalize()
    await env.sync()
    assert (await env.reload(order.id)).status == "completed"
    assert (await env.events(order.id)).count("order.payment_reversed") == 0
