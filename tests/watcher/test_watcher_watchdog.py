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


async def test_a_step_stuck_on_an_rpc_call_that_never_answers_is_abandoned(
    env: WatchEnv, anvil: AnvilNode
) -> None:
    # The node takes eth_blockNumber and never answers, and the client has no timeout to
    # speak of: only the watchdog can end such a step.
    with FaultProxy(
        anvil.url, timeout_rate=1.0, only_methods={"eth_blockNumber"}, hang_seconds=3600
    ) as proxy:
        rpc = RpcClient([proxy.url], timeout=3600)
        watcher = ChainWatcher(
            env.chain,
            env.sessions,
            env.clock,
            rpc,
            env.orders,
            options=WatcherOptions(step_timeout=1.0, poll_interval=0.05),
            holder=env.watcher.lease.holder,  # the fixture's watcher holds the lease (a fake clock)
        )
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
