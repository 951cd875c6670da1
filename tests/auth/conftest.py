"""Fixtures for the auth tests: a fake clock and a real Redis with a per-test key prefix."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from tests.service_urls import REDIS_URL

from stablegate.clock import FakeClock


def _services_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("STABLEGATE_REQUIRE_SERVICES") == "1"
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _connect() -> Redis:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        message = f"Redis at {REDIS_URL} is unreachable: {exc!r}"
        if _services_required():
            pytest.fail(message)
        pytest.skip(message)
    return client


async def _cleanup(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = await _connect()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: Redis) -> AsyncIterator[str]:
    prefix = f"sgtest:auth:{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend_redis(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Redis, str] | None]:
    """Parametrizes a test over the in-process backend (None) and Redis (client, key prefix)."""
    if request.param == "memory":
        yield None
        return
    client = await _connect()
    prefix = f"sgtest:auth:{uuid.uuid4().hex}:"
    try:
        yield client, prefix
    finally:
        await _cleanup(client, prefix)
