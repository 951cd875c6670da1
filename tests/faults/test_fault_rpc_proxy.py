"""The watcher reads the chain through three misbehaving JSON-RPC endpoints (FaultProxy in
front of anvil) and still credits every payment exactly once:

- ``flaky``: HTTP 500/429, JSON-RPC -32603, answers that never come, truncated answers,
  eth_getLogs range errors, batches answered in reverse order;
- ``lagging``: a node ten blocks behind the head;
- ``split``: a load balancer that sometimes answers from another node on a diverged fork
  (a second anvil forked from ours and mined on its own), at the latest every fifth request.

``stablegate watch`` runs as a subprocess with the three URLs in its chains file. Besides
the state of every order, the test asserts that no reorg and no operator alert was logged:
there was none on our chain, so any means the watcher believed the node on the other fork.
The bugs this finds (lost payments, early finality, spurious deep reorgs) are reproduced one by
one, deterministically, in test_fault_split_brain.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from eth_account.signers.local import LocalAccount
from tests.faults.fault_support import (
    CATEGORY_MIX,
    FaultHarness,
    open_harness,
    plan_orders,
)
from tests.rpc_fault_proxy import FaultProxy, start_diverged_fork

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient

pytestmark = pytest.mark.anvil

ORDERS = 30
MIN_PAYMENTS = 60
WAVES = 3


@pytest_asyncio.fixture
async def sqlite_harness(
    tmp_path: Path,
    anvil: AnvilNode,
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    clean_chain: None,
) -> AsyncIterator[FaultHarness]:
    opened = await open_harness(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        upstream_url=anvil.url,
        rpc=rpc,
        contracts=(gateway_contracts.factory, gateway_contracts.implementation),
        tokens=dev_tokens,
        senders=customer_accounts,
        seed_name="rpc_proxy",
    )
    try:
        yield opened
    finally:
        await opened.close()


async def _mine_fork(fork: RpcClient, ours: RpcClient, stop: asyncio.Event) -> None:
    """Keeps the diverged fork level with our chain, so its answers look plausible."""
    while not stop.is_set():
        our_head = int(await ours.call("eth_blockNumber", []), 16)
        fork_head = int(await fork.call("eth_blockNumber", []), 16)
        if our_head > fork_head:
            await fork.call("anvil_mine", [hex(our_head - fork_head)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def test_faulty_endpoints_lose_nothing_and_credit_nothing_twice(
    sqlite_harness: FaultHarness, anvil: AnvilNode
) -> None:
    harness = sqlite_harness
    started = time.monotonic()
    seed = harness.seed
    fork_node = start_diverged_fork(anvil, await harness.driver.head())
    fork = RpcClient([fork_node.url])
    stop_fork = asyncio.Event()
    fork_miner = asyncio.create_task(_mine_fork(fork, harness.driver.rpc, stop_fork))
    flaky = FaultProxy(
        anvil.url,
        seed=seed,
        error_rate=0.15,
        timeout_rate=0.03,
        truncate_rate=0.08,
        range_error_rate=0.1,
        shuffle_batches=True,
        hang_seconds=1.5,
    )
    lagging = FaultProxy(
        anvil.url, seed=seed + 1, lag_blocks=10, error_rate=0.08, truncate_rate=0.05
    )
    split = FaultProxy(
        anvil.url,
        seed=seed + 2,
        fork_url=fork_node.url,
        fork_rate=0.15,
        fork_every=5,  # a slow run's endpoint may get only ~15 requests: 0.85**15 is 9 %
        error_rate=0.08,
        truncate_rate=0.05,
    )
    proxies = {"flaky": flaky, "lagging": lagging, "split": split}
    try:
        for proxy in proxies.values():
            proxy.start()
        chains_file = harness.chains_file("faulty", [p.url for p in proxies.values()])
        harness.driver.start_miner(0.08)
        watcher = harness.start("watcher", harness.env(chains_file))
        rng = random.Random(seed)
        follow_up_stop = asyncio.Event()
        follow_up = asyncio.create_task(harness.run.follow_up(follow_up_stop))
        waves = [
            plan_orders(
                rng, ORDERS // WAVES, prefix=f"p{w}", max_payments=4, categories=CATEGORY_MIX
            )
            for w in range(WAVES)
        ]
        redraws = 0
        while sum(p.payment_count() for wave in waves for p in wave) < MIN_PAYMENTS:
            redraws += 1
            index = rng.randrange(WAVES)
            waves[index] = plan_orders(
                rng,
                ORDERS // WAVES,
                prefix=f"p{index}r{redraws}",
                max_payments=4,
                categories=CATEGORY_MIX,
            )
        for plans in waves:
            await harness.run.wave(plans)
            await asyncio.sleep(rng.uniform(1.0, 3.0))
        follow_up_stop.set()
        await harness.run.finish_follow_up(follow_up, 30)
        figures = await harness.verify(within=30)
        assert watcher.alive

        logs = watcher.logs()
        counts = Counter(str(line.get("event")) for line in logs)
        alerts = [line for line in logs if line.get("event") == "operator_alert"]
        reorgs = [line for line in logs if line.get("event") == "reorg"]
        tracebacks = [line["raw"] for line in logs if "raw" in line]
        print(
            f"faulty RPC (seed {seed}): {figures}, blocks mined {harness.driver.blocks_mined},"
            f" injected { ({n: dict(p.injected) for n, p in proxies.items()}) },"
            f" requests { {n: p.requests for n, p in proxies.items()} },"
            f" watcher events {dict(counts)}, runtime {time.monotonic() - started:.1f}s"
        )
        assert figures["payments"] >= MIN_PAYMENTS
        injected = sum((p.injected for p in proxies.values()), Counter())
        errors = sum(injected[k] for k in ("http_500", "http_429", "rpc_internal", "timeout"))
        assert errors and injected["truncate"] and injected["lag"], injected
        assert injected["fork"], "the split endpoint answered from the other fork"
        # No reorg happened on our chain: a watcher that saw one believed a node on another fork.
        assert not alerts, alerts[:5]
        assert not reorgs, reorgs[:5]
        assert not tracebacks, tracebacks[:20]
    finally:
        stop_fork.set()
        await fork_miner
        for proxy in proxies.values():
            proxy.stop()
        await fork.aclose()
        fork_node.stop()
