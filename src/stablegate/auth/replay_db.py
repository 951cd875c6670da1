"""Replay cache in the database, for several API processes without Redis."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import ReplayKey


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
        values = {"key": key, "expires_at_ms": now + ttl_ms}
        if session.get_bind().dialect.name == "postgresql":
            pg = postgresql.insert(ReplayKey).values(values)
            stmt: postgresql.Insert | sqlite.Insert = pg.on_conflict_do_update(
                index_elements=[ReplayKey.key],
                set_={"expires_at_ms": pg.excluded.expires_at_ms},
                where=ReplayKey.expires_at_ms <= now,
            )
        else:
            lite = sqlite.insert(ReplayKey).values(values)
            stmt = lite.on_conflict_do_update(
                index_elements=[ReplayKey.key],
                set_={"expires_at_ms": lite.excluded.expires_at_ms},
                where=ReplayKey.expires_at_ms <= now,
            )
        result = await session.execute(stmt.returning(ReplayKey.key))
        claimed = result.first() is not None
        self._claims += 1
        if self._claims % self._purge_every == 0:
            await session.execute(delete(ReplayKey).where(ReplayKey.expires_at_ms <= now))
        return claimed


class SessionReplayStore:
    """A :class:`DatabaseReplayStore` bound to one request's transaction."""

    def __init__(self, store: DatabaseReplayStore, session: AsyncSession) -> None:
        self._store = store
        self._session = session

    async def claim(self, key: str, ttl_ms: int) -> bool:
        return await self._store.claim_in(self._session, key, ttl_ms)
