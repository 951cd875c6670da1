"""Fixtures of the source tests: the local provider server, a fixed clock, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from tests.rates.provider_server import ProviderServer

from stablegate.clock import FakeClock

NOW_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
PROVIDER_TIME_MS = NOW_MS - 2_000  # the providers' clock: their prices are 2 s old on arrival


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ms=NOW_MS)


@pytest.fixture
def provider_server() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        server.time_ms = PROVIDER_TIME_MS
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest_asyncio.fixture
async def impatient_http() -> AsyncIterator[httpx.AsyncClient]:
    """A client giving up after 0.2 s: the ``timeout`` fault holds a request for 30."""
    async with httpx.AsyncClient(timeout=0.2) as client:
        yield client
