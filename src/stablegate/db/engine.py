"""Async engine and the unit-of-work session scope.

Services flush, never commit; ``session_scope`` commits once per request or worker step.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

READ_ONLY = "stablegate_read_only"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite has one writer at a time. With several connections, the losers sleep in
        # SQLite's busy handler (up to 100 ms per try) while the event loop idles; one pooled
        # connection makes them queue in asyncio instead (bench/api.py: p99 2.6 s -> 0.4 s).
        options: dict[str, Any] = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
        if parsed.database in (None, "", ":memory:"):
            options = {}
        options.update(kwargs)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    connect_args: dict[str, Any] = {
        # A watcher or worker stuck inside a transaction must not hold locks forever.
        "server_settings": {"idle_in_transaction_session_timeout": "30000"},
    }
    ping_after_idle_s = kwargs.pop("ping_after_idle_s", PING_AFTER_IDLE_S)
    # Sized for a burst of concurrent requests: overflow connections are closed on check-in,
    # so a small pool keeps reconnecting under load.
    options = {"pool_size": 40, "max_overflow": 10, **kwargs}
    engine = create_async_engine(url, connect_args=connect_args, **options)
    _ping_idle_connections(engine, ping_after_idle_s)
    return engine


# A pooled connection back in use within this time is not pinged at checkout. SQLAlchemy's
# pool_pre_ping pinged every checkout: on asyncpg three round trips (BEGIN, a no-op, ROLLBACK),
# more than a signed order's own statements. A connection that sat idle longer (the database may
# have restarted meanwhile) is pinged, and replaced when it does not answer.
PING_AFTER_IDLE_S = 10.0


def _ping_idle_connections(engine: AsyncEngine, after_idle_s: float) -> None:
    pool_events = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get("checked_in_at")
        if last is None or time.monotonic() - last < after_idle_s:
            return  # new, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool drops this connection and checks out another (a fresh one if need be).
            raise DisconnectionError("an idle pooled connection did not answer") from exc

    event.listen(pool_events, "checkin", checked_in)
    event.listen(pool_events, "checkout", checked_out)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # Let SQLAlchemy, not the driver, start transactions, so they can take the write lock up front.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Any) -> None:
    # A deferred transaction that later writes fails with "database is locked" instead of
    # waiting for busy_timeout when another writer got there first; IMMEDIATE waits.
    # Read-only scopes (read_scope) stay deferred so readers never queue behind writers.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, roll back on any exception. A scope that never
    touched the database commits nothing (no transaction is begun just to end it)."""
    async with sessions() as session:
        try:
            yield session
            if session.in_transaction():
                await session.commit()
        except BaseException:
            await session.rollback()
            raise


@asynccontextmanager
async def read_scope(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A transaction that only reads: on SQLite it takes no write lock (WAL readers run
    alongside the writer); elsewhere an ordinary transaction. It ends with a commit of
    nothing (a rollback would expire the objects the caller goes on reading)."""
    async with sessions() as session:
        await session.connection(execution_options={READ_ONLY: True})
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
