"""One wrong answer from a node on another fork (a load balancer over nodes that disagree)
must never cost a payment, make one final early, or reverse a completed order.

Each test aims a single kind of call at a diverged anvil fork and steps an in-process watcher
by hand, so the failure is deterministic. These reproduce bugs found by the random proxy test
(test_fault_rpc_proxy.py); see the report in each test's docstring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from tests.faults.fault_support import GatewayDb, SplitBrainRpc, write_chains_file
from tests.rpc_fault_proxy import start_diverged_fork

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.clock import SystemClock
from stablegate.db.engine import session_scope
from stablegate.models import Order, Payment, WebhookEvent
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.reports import StepOutcome

pytestmark = pytest.mark.anvil


@dataclass
class SplitBrain:
    db: GatewayDb
    rpc: RpcClient
    anvil: AnvilNode
    fork: AnvilNode
    fork_rpc: RpcClient
    tokens: dict[str, str]
    customer: LocalAccount
    clients: list[RpcClient] = field(default_factory=list)

    async def head(self) -> int:
        return int(await self.rpc.call("eth_blockNumber", []), 16)

    async def mine_fork_to(self, height: int) -> None:
        fork_head = int(await self.fork_rpc.call("eth_blockNumber", []), 16)
        if height > fork_head:
            await self.fork_rpc.call("anvil_mine", [hex(height - fork_head)])

    def watcher(self, route: Callable[[str, Sequence[Any]], bool]) -> ChainWatcher:
        client = SplitBrainRpc(self.anvil.url, self.fork.url, route)
        self.clients.append(client)
        return ChainWatcher(
            self.db.chain,
            self.db.sessions,
            SystemClock(),
            client,
            self.db.ctx,
            options=WatcherOptions(poll_interval=0.05),
        )

    async def order(self, amount: str = "10") -> Order:
        block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        [order] = await self.db.create_orders(
            int(block["timestamp"], 16) * 1000, [(f"sb-{amount}", "USDT", amount, 3600)]
        )
        return order

    async def pay(self, order: Order, units: int) -> int:
        receipt = await transact(
            self.rpc,
            self.customer,
            self.tokens["USDT"],
            tether_token().encode_call("transfer", order.to_address, units),
        )
        return int(receipt["blockNumber"], 16)

    async def rows(self, order_id: str) -> tuple[Order, list[Payment], list[str]]:
        async with session_scope(self.db.sessions) as session:
            order = await session.get(Order, order_id)
            assert order is not None
            payments = list(
                (await session.scalars(select(Payment).where(Payment.order_id == order_id))).all()
            )
            events = list(
                (
                    await session.scalars(
                        select(WebhookEvent.type)
                        .where(WebhookEvent.order_id == order_id)
                        .order_by(WebhookEvent.sequence)
                    )
                ).all()
            )
        return order, payments, events


@pytest_asyncio.fixture
async def split_brain(
    tmp_path: Path,
    anvil: AnvilNode,
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    clean_chain: None,
) -> AsyncIterator[SplitBrain]:
    chains_file = write_chains_file(
        tmp_path / "chains.toml",
        [anvil.url],
        gateway_contracts.factory,
        gateway_contracts.implementation,
        dev_tokens,
    )
    db = await GatewayDb.open(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", chains_file)
    head = int(await rpc.call("eth_blockNumber", []), 16)
    fork = start_diverged_fork(anvil, head)
    fork_rpc = RpcClient([fork.url])
    split_brain = SplitBrain(db, rpc, anvil, fork, fork_rpc, dev_tokens, customer_accounts[0])
    try:
        yield split_brain
    finally:
        for client in split_brain.clients:
            await client.aclose()
        await fork_rpc.aclose()
        fork.stop()
        await db.close()


async def test_logs_answered_from_another_fork_do_not_skip_a_payment(
    split_brain: SplitBrain,
) -> None:
    """BUG: an eth_getLogs answer from a node on another fork (or a node that has not got the
    blocks yet) comes back empty; nothing ties an empty answer to our blocks, so the watcher
    commits the range and moves its cursor past the payment: the payment is lost for good.
    (watcher/loop.py ``_step`` after ``fetch_transfers``: only returned logs are checked
    against the block hashes.)"""
    sb = split_brain
    order = await sb.order()
    watcher = sb.watcher(lambda method, _: method == "eth_getLogs")
    assert (await watcher.step()).outcome == StepOutcome.ADVANCED  # initialised
    block = await sb.pay(order, 10_000_000)
    await sb.rpc.call("anvil_mine", ["0x3"])
    await sb.mine_fork_to(await sb.head() + 5)  # the other node is level with ours, or ahead
    for _ in range(5):
        await watcher.step()
    state = await sb.db.chain_state()
    assert state is not None
    _, payments, _ = await sb.rows(order.id)
    assert payments or state.cursor_number < block, (
        f"cursor moved to {state.cursor_number}, past the payment in block {block},"
        f" which was never recorded ({watcher.rpc.forked_calls} eth_getLogs from the fork)"  # type: ignore[attr-defined]
    )
    # With honest answers again the payment must (still) be found, once.
    watcher.rpc.enabled = False  # type: ignore[attr-defined]
    for _ in range(5):
        await watcher.step()
    order_now, payments, _ = await sb.rows(order.id)
    assert len(payments) == 1 and order_now.status == "confirming"


async def test_finalized_tag_from_another_fork_does_not_make_a_fresh_payment_final(
    split_brain: SplitBrain,
) -> None:
    """BUG: the finalized tag is taken from one answer. A node on another fork that is ahead
    reports a finalized block above our head; the watcher caps it at the head and stores it as
    the final height (which never goes down), so a payment one block old is credited as final
    and the order completes with no finality at all. (watcher/loop.py ``_step``:
    ``final_number = max(snap.final_number, final_header.number)`` with no check that the
    finalized block is on the chain being followed.)"""
    sb = split_brain
    order = await sb.order()
    watcher = sb.watcher(
        lambda method, params: (
            method == "eth_getBlockByNumber" and bool(params) and params[0] == "finalized"
        )
    )
    await watcher.step()
    block = await sb.pay(order, 10_000_000)
    await sb.rpc.call("anvil_mine", ["0x2"])
    await sb.mine_fork_to(await sb.head() + 100)  # its finalized tag is above our head
    for _ in range(3):
        await watcher.step()
    our_final = await sb.rpc.call("eth_getBlockByNumber", ["finalized", False])
    order_now, [payment], events = await sb.rows(order.id)
    assert int(our_final["number"], 16) < block
    assert payment.status == "seen", (
        f"payment in block {block} is {payment.status} though our node's finalized block is"
        f" {int(our_final['number'], 16)}; events {events}"
    )
    assert order_now.status == "confirming"


async def test_finalized_tag_from_another_fork_does_not_reverse_a_completed_order(
    split_brain: SplitBrain,
) -> None:
    """BUG: a finalized header from another fork that differs from a block we stored is taken
    as proof of a reorg. The walk-back then finds our stored blocks still canonical and rewinds
    anyway, orphaning the final, credited payment of a completed order: the merchant gets
    ``order.payment_reversed`` and an operator alert ("reorg below the final height") for a
    payment that never moved, and after the rescan ``order.overpaid``; the order keeps
    ``reversed_after_completion`` and ``overpaid`` though it was paid exactly once.
    (watcher/loop.py ``_step``: "A finalized tag that contradicts a block we stored" calls
    ``_reorg`` on one answer; ``_reorg`` never checks that the ancestor it found is below the
    contradicting block.)"""
    sb = split_brain
    order = await sb.order()
    watcher = sb.watcher(
        lambda method, params: (
            method == "eth_getBlockByNumber" and bool(params) and params[0] == "finalized"
        )
    )
    watcher.rpc.enabled = False  # type: ignore[attr-defined]
    await watcher.step()  # initialised
    block = await sb.pay(order, 10_000_000)
    await sb.rpc.call("anvil_mine", ["0x40"])  # 64 blocks: the payment's block is final
    report = await watcher.step()  # backfills final blocks up to exactly that block
    assert report.to_block == block, report
    completed, [payment], events = await sb.rows(order.id)
    assert completed.status == "completed" and payment.status == "final" and payment.credited
    # The other node's finalized block has the same number as ours, and another hash.
    await sb.mine_fork_to(block + 64)
    watcher.rpc.enabled = True  # type: ignore[attr-defined]
    await watcher.step()
    watcher.rpc.enabled = False  # type: ignore[attr-defined]
    for _ in range(5):
        await watcher.step()
    after, [payment], events_after = await sb.rows(order.id)
    assert (after.status, after.exceptions, after.paid_amount) == ("completed", [], 10_000_000), (
        f"exceptions {after.exceptions}, events {events_after}"
    )
    assert events_after == events, events_after
