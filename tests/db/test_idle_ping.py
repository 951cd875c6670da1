"""PostgreSQL connections are pinged at checkout only after sitting idle: a connection the
database dropped while idle is replaced before a request uses it, and a busy pool sends no ping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import POSTGRES_ADMIN_URL

from stablegate.db.engine import make_engine


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid = await connection.scalar(text("SELECT pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


async def _terminate(pid: int) -> None:
    """What a database restart does to a pooled connection: its backend goes away."""
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


@pytest.fixture
async def engines(postgres_database: str) -> AsyncIterator[list[AsyncEngine]]:
    made: list[AsyncEngine] = []
    yield made
    for engine in made:
        await engine.dispose()


def _engine(url: str, made: list[AsyncEngine], ping_after_idle_s: float) -> AsyncEngine:
    engine = make_engine(url, pool_size=1, ping_after_idle_s=ping_after_idle_s)
    made.append(engine)
    return engine


async def test_a_connection_dropped_while_idle_is_replaced(
    postgres_database: str, engines: list[AsyncEngine]
) -> None:
    engine = _engine(postgres_database, engines, ping_after_idle_s=0.05)
    dropped = await _backend_pid(engine)
    await _terminate(dropped)
    await asyncio.sleep(0.1)
    assert await _backend_pid(engine) != dropped  # answered, on a new connection


async def test_without_the_idle_ping_the_first_use_fails(
    postgres_database: str, engines: list[AsyncEngine]
) -> None:
    """The same drop, with the connection reused before the ping is due: the statement fails
    (this is what the ping prevents), and the pool recovers on the next checkout."""
    engine = _engine(postgres_database, engines, ping_after_idle_s=3600)
    dropped = await _backend_pid(engine)
    await _terminate(dropped)
    await asyncio.sleep(0.1)
    with pytest.raises(DBAPIError):
        await _backend_pid(engine)
    assert await _backend_pid(engine) != dropped


async def test_a_busy_pool_sends_no_ping(
    postgres_database: str, engines: list[AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(postgres_database, engines, ping_after_idle_s=10)
    pings: list[Any] = []
    dialect = engine.sync_engine.dialect
    real_ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(real_ping(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counted)
    for _ in range(20):
        await _backend_pid(engine)
    assert pings == []
