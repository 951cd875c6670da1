"""A watcher step stuck on a call that never returns is abandoned by the watchdog: logged with
its stack, and the loop goes on with the next step (it never stalls silently)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from structlog.testing import capture_logs
from tests.rpc_fault_proxy import FaultProxy
from tests.watcher.conftest import WatchEnv

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.rpc import RpcClient
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions

pytestmark = pytest.mark.anvil


async def _until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _watcher_through(env: WatchEnv, rpc: RpcClient, **options: Any) -> ChainWatcher:
    """A second watcher on the fixture's chain, reading through ``rpc``, with a 1 s step bound.
    It takes over the fixture watcher's lease holder (the lease runs on a fake clock)."""
    return ChainWatcher(
        env.chain,
        env.sessions,
        env.clock,
        rpc,
        env.orders,
        options=WatcherOptions(step_timeout=1.0, poll_interval=0.05, **options),
        holder=env.watcher.lease.holder,
    )


async def test_a_step_stuck_on_an_rpc_call_that_never_answers_is_abandoned(
    env: WatchEnv, anvil: AnvilNode
) -> None:
    # The node takes eth_blockNumber and never answers, and the client has no timeout to
    # speak of: only the watchdog can end such a step.
    with FaultProxy(
        anvil.url, timeout_rate=1.0, only_methods={"eth_blockNumber"}, hang_seconds=3600
    ) as proxy:
        rpc = RpcClient([proxy.url], timeout=3600)
        watcher = _watcher_through(env, rpc)
        stop = asyncio.Event()
        with capture_logs() as logs:
            loop = asyncio.create_task(watcher.run_forever(stop))
            try:

                def stalled() -> list[dict[str, Any]]:
                    return [e for e in logs if e["event"] == "step_stalled"]

                # Two stalls: the loop went on to another step after abandoning the first.
                await _until(lambda: len(stalled()) >= 2, 20, "two abandoned steps")
            finally:
                stop.set()
                await asyncio.wait_for(loop, 30)
                await rpc.aclose()
    first = stalled()[0]
    assert first["worker"] == "watcher" and first["chain_id"] == env.chain.id
    # Where it was stuck: the head query of the step, down to the HTTP request.
    functions = [line.rsplit(" in ", 1)[1] for line in first["stack"] if " in " in line]
    assert functions[:3] == ["step", "run_step", "_step"]
    assert "head" in functions and "_post" in functions
    assert proxy.methods["eth_blockNumber"] >= 2
    assert "watcher_stopped" in [e["event"] for e in logs]
    # The abandoned step wrote nothing, and its lease is handed over at the stop.
    assert not [e for e in logs if e["event"] == "watcher_step_failed"]


async def test_a_token_check_stuck_at_start_up_is_abandoned_and_retried(
    env: WatchEnv, anvil: AnvilNode
) -> None:
    # The start-up check reads each token's decimals and symbol with eth_call: the node
    # takes them and never answers.
    with FaultProxy(
        anvil.url, timeout_rate=1.0, only_methods={"eth_call"}, hang_seconds=3600
    ) as proxy:
        rpc = RpcClient([proxy.url], timeout=3600)
        watcher = _watcher_through(env, rpc)
        stop = asyncio.Event()
        with capture_logs() as logs:
            loop = asyncio.create_task(watcher.run_forever(stop))
            try:
                await _until(
                    lambda: any(e["event"] == "token_check_retry" for e in logs),
                    20,
                    "the stuck token check to be abandoned",
                )
            finally:
                stop.set()
                await asyncio.wait_for(loop, 30)
                await rpc.aclose()
    stalled = [e for e in logs if e["event"] == "step_stalled"]
    assert stalled and stalled[0]["step"] == "token check"
    assert stalled[0]["worker"] == "watcher" and stalled[0]["chain_id"] == env.chain.id
    assert "token_mismatches" in " ".join(stalled[0]["stack"])
    # It never went on to watch with an unchecked chains file.
    assert proxy.methods.get("eth_getLogs", 0) == 0
    assert not [e for e in logs if e["event"] in ("watcher_initialised", "watcher_refused")]


async def test_a_reconciliation_stuck_on_the_node_is_abandoned_and_watching_goes_on(
    env: WatchEnv, anvil: AnvilNode
) -> None:
    await env.order("1")  # a watched deposit: reconciliation reads its balances
    with FaultProxy(anvil.url) as proxy:
        rpc = RpcClient([proxy.url], timeout=3600)
        watcher = _watcher_through(env, rpc, reconcile_interval_ms=60_000)
        stop = asyncio.Event()
        with capture_logs() as logs:
            loop = asyncio.create_task(watcher.run_forever(stop))
            try:
                # Past the token check (its eth_calls answered): steps are running.
                await _until(lambda: proxy.methods.get("eth_blockNumber", 0) >= 2, 20, "steps")
                # Balances are read with eth_call; from now on the node never answers those.
                proxy.set_policy(timeout_rate=1.0, only_methods={"eth_call"}, hang_seconds=3600)
                env.clock.advance(120)  # a reconciliation is due at the next idle step

                def stalled() -> list[dict[str, Any]]:
                    return [e for e in logs if e["event"] == "step_stalled"]

                await _until(lambda: bool(stalled()), 20, "the stuck reconciliation")
                heads = proxy.methods["eth_blockNumber"]
                await _until(
                    lambda: proxy.methods["eth_blockNumber"] >= heads + 2, 20, "more steps"
                )
            finally:
                stop.set()
                await asyncio.wait_for(loop, 30)
                await rpc.aclose()
    assert stalled()[0]["step"] == "reconcile"
    assert "balances_at" in " ".join(stalled()[0]["stack"])
    assert [e for e in logs if e["event"] == "reconcile_failed"]
    assert not [e for e in logs if e["event"] == "watcher_step_failed"]
    assert "watcher_stopped" in [e["event"] for e in logs]
