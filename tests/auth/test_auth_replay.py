"""Replay stores: one shared suite for the in-process and the Redis store."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from stablegate.auth.replay import (
    REPLAY_TTL_MS,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayCacheFull,
    ReplayStore,
    replay_key,
)
from stablegate.clock import FakeClock


@pytest.fixture
def store(backend_redis: tuple[Redis, str] | None, clock: FakeClock) -> ReplayStore:
    if backend_redis is None:
        return MemoryReplayStore(clock)
    return RedisReplayStore(*backend_redis)


def test_replay_key_depends_on_key_and_string() -> None:
    k = replay_key("ak_1", b"a\nb")
    assert len(k) == 64 and int(k, 16) >= 0
    assert k == replay_key("ak_1", b"a\nb")
    assert k != replay_key("ak_2", b"a\nb")
    assert k != replay_key("ak_1", b"a\nc")
    assert REPLAY_TTL_MS == 61_000


async def test_claim_once(store: ReplayStore) -> None:
    assert await store.claim("k1", REPLAY_TTL_MS)
    assert not await store.claim("k1", REPLAY_TTL_MS)
    assert await store.claim("k2", REPLAY_TTL_MS)


async def test_concurrent_claims_have_one_winner(store: ReplayStore) -> None:
    results = await asyncio.gather(*(store.claim("same", REPLAY_TTL_MS) for _ in range(20)))
    assert sum(results) == 1


@pytest.mark.redis
async def test_redis_entry_expires(redis_client: Redis, redis_prefix: str) -> None:
    store = RedisReplayStore(redis_client, redis_prefix)
    assert await store.claim("short", 30)
    assert not await store.claim("short", 30)
    ttl = await redis_client.pttl(f"{redis_prefix}replay:short")
    assert 0 < ttl <= 30
    await asyncio.sleep(0.06)
    assert await store.claim("short", 30)


async def test_memory_entry_expires_after_ttl(clock: FakeClock) -> None:
    store = MemoryReplayStore(clock)
    assert await store.claim("k", 61_000)
    clock.advance(61.0)
    assert not await store.claim("k", 61_000)  # inclusive at the edge
    clock.advance(0.001)
    assert await store.claim("k", 61_000)


async def test_memory_store_evicts_expired_entries(clock: FakeClock) -> None:
    store = MemoryReplayStore(clock, max_entries=10)
    for i in range(10):
        assert await store.claim(f"k{i}", 1_000)
    with pytest.raises(ReplayCacheFull) as info:
        await store.claim("one-too-many", 1_000)
    assert info.value.status == 503
    clock.advance(1.001)
    assert await store.claim("fresh", 1_000)
    assert store.size == 1
    for i in range(9):
        assert await store.claim(f"again{i}", 1_000)
    assert not await store.claim("fresh", 1_000)
