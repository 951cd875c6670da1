"""When each API key was last used (``api_keys.last_used_at_ms``, shown in the dashboard).

Writing a row on every request would put a write transaction on every signed order and read, so
each API process remembers when it last wrote each key and writes again only once a minute has
passed: most requests cost a dictionary lookup. The UPDATE itself is conditional, so processes
that share a database do not rewrite a time another one set within the minute. Recording is
best effort: a failed write is logged and never fails the request it belongs to.
"""

from __future__ import annotations

import structlog
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import ApiKey

log = structlog.get_logger("stablegate.api")

LAST_USE_INTERVAL_MS = 60_000
# Keys remembered per process before the memo starts over (each is a few dozen bytes; only keys
# that authenticated get in, so this bounds memory, not an attacker's reach).
_MAX_REMEMBERED = 100_000


class KeyUseRecorder:
    """One per app (:class:`~stablegate.web.context.WebContext`): the last write per key."""

    def __init__(self, interval_ms: int = LAST_USE_INTERVAL_MS) -> None:
        self.interval_ms = interval_ms
        self._written: dict[str, int] = {}
        self.writes = 0  # UPDATEs attempted, for the tests and the benchmark

    def due(self, key_id: str, now_ms: int) -> bool:
        """Whether this process should write the key's last use now (a minute after its last
        write, or when the clock went back)."""
        last = self._written.get(key_id)
        return last is None or not 0 <= now_ms - last < self.interval_ms

    async def record(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        key_id: str,
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """With ``session``, written in the caller's transaction (in a savepoint, so a failed
        write leaves the caller's transaction usable); otherwise in one of its own."""
        now = clock.now_ms()
        if not self.due(key_id, now):
            return
        if len(self._written) >= _MAX_REMEMBERED:
            self._written.clear()
        # Remembered before the write: requests arriving meanwhile, or after a failed write,
        # do not pile up behind it; the next attempt is a minute later.
        self._written[key_id] = now
        self.writes += 1
        statement = (
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(
                    ApiKey.last_used_at_ms.is_(None),
                    ApiKey.last_used_at_ms <= now - self.interval_ms,
                    ApiKey.last_used_at_ms > now,
                ),
            )
            .values(last_used_at_ms=now)
        )
        try:
            if session is not None:
                async with session.begin_nested():
                    await session.execute(statement)
            else:
                async with session_scope(sessions) as own:
                    await own.execute(statement)
        except Exception as exc:  # the request authenticated; its answer must not depend on this
            log.warning("key_last_use_not_recorded", api_key_id=key_id, error=type(exc).__name__)
