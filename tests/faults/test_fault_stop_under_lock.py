"""A watcher asked to stop while the test's own database transaction holds SQLite's write lock.

The seeded SIGKILL test once failed with ``watcher-N did not stop on SIGTERM``: the harness
waited for the process synchronously, blocking the test's event loop while its lease monitor
was inside a transaction. That transaction kept SQLite's write lock, which the stopping watcher
needed to finish its step and hand its lease over, so neither side could move until the
harness gave up. The harness now waits without blocking its loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.faults.fault_support import (
    GatewayDb,
    WatcherProcess,
    wait_for,
    watcher_env,
    write_chains_file,
)

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.db.engine import session_scope

pytestmark = [pytest.mark.anvil]


async def test_a_watcher_stops_while_a_test_transaction_holds_the_write_lock(
    tmp_path: Path,
    anvil: AnvilNode,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    clean_chain: None,
) -> None:
    chains_file = write_chains_file(
        tmp_path / "chains.toml",
        [anvil.url],
        gateway_contracts.factory,
        gateway_contracts.implementation,
        dev_tokens,
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    db = await GatewayDb.open(url, chains_file)
    env = watcher_env(url, chains_file, tmp_path / "data", lease_ttl_ms=2000)
    process = WatcherProcess("watcher-0", env, tmp_path).start()
    try:

        async def holds() -> bool:
            return process.holds(await db.lease())

        await wait_for(holds, 60, "the watcher to take the lease")
        locked = asyncio.Event()

        async def short_write() -> None:
            async with session_scope(db.sessions) as session:
                await session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock
                locked.set()
                await asyncio.sleep(1.0)  # the watcher's next step now waits for it

        writer = asyncio.create_task(short_write())
        await locked.wait()
        assert await process.terminate() == 0
        await writer
        assert process.events("watcher_stopped")
    finally:
        process.kill()
        await db.close()
