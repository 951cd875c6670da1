"""The registry's tokens are checked against the chain before a chain is watched."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from tests.watcher.conftest import WatchEnv

from stablegate.chain.registry import Token
from stablegate.watcher.tokens import token_mismatches

pytestmark = pytest.mark.anvil


async def test_registry_matching_the_chain_passes(env: WatchEnv) -> None:
    assert await token_mismatches(env.rpc, env.chain) == []


async def test_wrong_decimals_symbol_or_address_stop_the_watcher(env: WatchEnv) -> None:
    usdt = env.chain.token_by_symbol("USDT")
    assert usdt is not None
    broken = replace(
        env.chain,
        tokens=(
            replace(usdt, decimals=18),
            Token("USDC", env.tokens["USDT18"], 6),
            Token("DAI", "0x000000000000000000000000000000000000dEaD", 18),
        ),
    )
    problems = await token_mismatches(env.rpc, broken)
    assert len(problems) == 4, problems  # decimals; symbol and decimals; no contract
    assert any("decimals() is 6" in p for p in problems)
    assert any("symbol() is 'USDT18'" in p for p in problems)
    assert any("no contract" in p for p in problems)

    env.watcher.chain = broken
    stop = asyncio.Event()
    await asyncio.wait_for(env.watcher.run_forever(stop), timeout=10)  # returns: refused
