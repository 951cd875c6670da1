"""A sweeper step stuck on a node that never answers is abandoned by the watchdog, logged with
its stack, and the loop goes on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from structlog.testing import capture_logs
from tests.rpc_fault_proxy import FaultProxy
from tests.sweeper.conftest import SweepEnv

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.rpc import RpcClient
from stablegate.sweeper.options import GWEI, SweepOptions
from stablegate.sweeper.worker import ChainSweeper

pytestmark = pytest.mark.anvil


async def test_a_sweeper_step_stuck_on_an_unanswered_call_is_abandoned(
    sweep_env: SweepEnv, anvil: AnvilNode
) -> None:
    w = sweep_env.watch
    # eth_chainId (the step's first call) is taken and never answered; no client timeout.
    with FaultProxy(
        anvil.url, timeout_rate=1.0, only_methods={"eth_chainId"}, hang_seconds=3600
    ) as proxy:
        rpc = RpcClient([proxy.url], timeout=3600)
        sweeper = ChainSweeper(
            w.chain,
            w.sessions,
            w.clock,
            rpc,
            sweep_env.relayer,
            options=SweepOptions(max_fee_per_gas=100 * GWEI, poll_interval=0.05),
            step_timeout=1.0,
        )
        stop = asyncio.Event()
        with capture_logs() as logs:
            loop = asyncio.create_task(sweeper.run_forever(stop))

            def stalled() -> list[dict[str, Any]]:
                return [e for e in logs if e["event"] == "step_stalled"]

            try:
                deadline = time.monotonic() + 60
                while len(stalled()) < 2:  # the loop went on after abandoning a step
                    assert time.monotonic() < deadline, "timed out waiting for two stalls"
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await asyncio.wait_for(loop, 30)
                await rpc.aclose()
    first = stalled()[0]
    assert first["worker"] == "sweeper" and first["chain_id"] == w.chain.id
    functions = [line.rsplit(" in ", 1)[1] for line in first["stack"] if " in " in line]
    assert functions[:4] == ["step", "run_step", "_step", "chain_id"]
    assert "_post" in functions
    assert proxy.methods["eth_chainId"] >= 2
    assert "sweeper_stopped" in [e["event"] for e in logs]
