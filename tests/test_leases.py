"""Leases and the leased step of the per-chain workers: one holder at a time, fenced by the
epoch, handed over at a clean stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.conftest import copy_migrated_sqlite, empty_tables

from stablegate.chain.evm.rpc_errors import RpcUnavailable
from stablegate.clock import FakeClock
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.leases import ChainLease, LeaseGrant, StepHalt, fenced
from stablegate.migrations import upgrade

TTL_MS = 10_000


@pytest_asyncio.fixture
async def sessions(
    database_url: str, migrated_sqlite: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    if not copy_migrated_sqlite(migrated_sqlite, database_url):
        await upgrade(engine)
    if not database_url.startswith("sqlite"):
        await empty_tables(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


def lease(sessions: async_sessionmaker[AsyncSession], clock: FakeClock, holder: str) -> ChainLease:
    return ChainLease(sessions, clock, worker="sweeper", chain_id=7, ttl_ms=TTL_MS, holder=holder)


def outcome(why: StepHalt, detail: str) -> tuple[str, str]:
    return (why.value, detail)


async def test_one_holder_at_a_time_and_a_deposed_one_cannot_write(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    first, second = lease(sessions, clock, "a"), lease(sessions, clock, "b")
    grants: list[LeaseGrant] = []

    async def remember(grant: LeaseGrant) -> tuple[str, str]:
        grants.append(grant)
        return ("ran", "")

    assert await first.run_step(remember, outcome) == ("ran", "")
    assert grants[-1].name == "sweeper:7" and grants[-1].epoch == 1
    assert await second.run_step(remember, outcome) == ("standby", "")
    clock.advance(TTL_MS / 1000 + 1)  # the first holder paused past its lease
    assert await second.run_step(remember, outcome) == ("ran", "")
    assert grants[-1].holder == "b" and grants[-1].epoch == 2

    async def write_late(grant: LeaseGrant) -> tuple[str, str]:
        async with fenced(sessions, grants[0]):  # the first holder's old grant
            raise AssertionError("a deposed holder got a write transaction")

    assert await first.run_step(write_late, outcome) == ("standby", "")
    assert await second.run_step(write_late, outcome) == (
        "fenced",
        "lease epoch is 2, ours is 1",
    )


async def test_a_node_failure_is_a_retry(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    worker = lease(sessions, clock, "a")

    async def node_down(grant: LeaseGrant) -> tuple[str, str]:
        raise RpcUnavailable("eth_blockNumber", [("http://node", "timed out")])

    why, detail = await worker.run_step(node_down, outcome)
    assert why == "retry" and "no RPC endpoint answered" in detail

    async def refused(grant: LeaseGrant) -> tuple[str, str]:
        raise ConnectionRefusedError("connection refused")

    assert await worker.run_step(refused, outcome) == ("retry", "connection refused")


async def test_release_hands_the_lease_over_at_once(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    first, second = lease(sessions, clock, "a"), lease(sessions, clock, "b")

    async def work(grant: LeaseGrant) -> tuple[str, str]:
        return ("ran", str(grant.epoch))

    assert await first.run_step(work, outcome) == ("ran", "1")
    await first.release()
    assert first.grant is None
    await first.release()  # nothing held: nothing to do
    assert await second.run_step(work, outcome) == ("ran", "2")
