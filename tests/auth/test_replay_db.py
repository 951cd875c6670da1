"""The database replay store: shared by API processes without Redis, atomic on both backends."""

from __future__ import annotations

import asyncio

from stablegate.auth.replay_db import DatabaseReplayStore
from stablegate.clock import FakeClock
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.migrations import upgrade


async def test_claim_once_then_again_after_expiry(database_url: str) -> None:
    engine = make_engine(database_url)
    await upgrade(engine)
    clock = FakeClock()
    try:
        store = DatabaseReplayStore(make_sessionmaker(engine), clock, purge_every=3)
        key = "a" * 64
        assert await store.claim(key, 61_000) is True
        assert await store.claim(key, 61_000) is False
        clock.advance(60)
        assert await store.claim(key, 61_000) is False
        clock.advance(1.001)
        assert await store.claim(key, 61_000) is True
        # Two "processes" (stores on separate engines) racing on one key: exactly one wins.
        other_engine = make_engine(database_url)
        try:
            other = DatabaseReplayStore(make_sessionmaker(other_engine), clock)
            results = await asyncio.gather(*(s.claim("b" * 64, 61_000) for s in [store, other] * 4))
            assert results.count(True) == 1
        finally:
            await other_engine.dispose()
    finally:
        await engine.dispose()
