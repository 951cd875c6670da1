"""Replay cache in the database, for several API processes without Redis."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Insert, Table, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import ReplayKey


def _claim_statement(dialect: str) -> Insert:
    """Inserted, or taken over from an expired entry (``now_ms``), returning the key; a live
    entry returns nothing. Built once per dialect, so each claim only binds its values."""
    table = cast(Table, ReplayKey.__table__)
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    insert = insert.values(key=bindparam("key"), expires_at_ms=bindparam("expires_at_ms"))
    return insert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"expires_at_ms": insert.excluded.expires_at_ms},
        where=table.c.expires_at_ms <= bindparam("now_ms"),
    ).returning(table.c.key)


_CLAIM = {name: _claim_statement(name) for name in ("postgresql", "sqlite")}


def claim_statement(dialect: str) -> Insert:
    """The claim's upsert (parameters ``key``, ``expires_at_ms``, ``now_ms``), for a caller that
    runs it outside a session (stablegate.orders.signed_insert_sqlite)."""
    return _CLAIM[dialect]


class DatabaseReplayStore:
    """One atomic upsert per claim: inserted, or taken over from an expired entry, else a replay."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, *, purge_every: int = 1000
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._purge_every = purge_every
        self._claims = 0

    async def claim(self, key: str, ttl_ms: int) -> bool:
        async with session_scope(self._sessions) as session:
            return await self.claim_in(session, key, ttl_ms)

    def within(self, session: AsyncSession) -> SessionReplayStore:
        """This store, its claims made in ``session``'s transaction: they take effect only if
        the request's own writes do (a request that fails leaves no trace, so sending it again
        is no replay of anything that happened)."""
        return SessionReplayStore(self, session)

    async def claim_in(self, session: AsyncSession, key: str, ttl_ms: int) -> bool:
        now = self._clock.now_ms()
        connection = await session.connection()
        result = await connection.execute(
            _CLAIM[connection.dialect.name],
            {"key": key, "expires_at_ms": now + ttl_ms, "now_ms": now},
        )
        claimed = result.first() is not None
        await self.claimed_elsewhere(session)
        return claimed

    async def claimed_elsewhere(self, session: AsyncSession) -> None:
        """Count a claim made by another statement (:mod:`stablegate.orders.signed_insert`);
        every ``purge_every`` claims, expired entries are deleted."""
        self._claims += 1
        if self._claims % self._purge_every == 0:
            now = self._clock.now_ms()
            await session.execute(delete(ReplayKey).where(ReplayKey.expires_at_ms <= now))


class SessionReplayStore:
    """A :class:`DatabaseReplayStore` bound to one request's transaction."""

    def __init__(self, store: DatabaseReplayStore, session: AsyncSession) -> None:
        self._store = store
        self._session = session

    async def claim(self, key: str, ttl_ms: int) -> bool:
        return await self._store.claim_in(self._session, key, ttl_ms)
