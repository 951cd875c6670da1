"""Writes fenced by the sweeper's lease epoch (lease ``sweeper:<chain id>``, docs/DESIGN.md §6)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.db.engine import session_scope
from stablegate.watcher.lease import Fenced, LeaseGrant, hold

__all__ = ["Fenced", "fenced"]


@asynccontextmanager
async def fenced(
    sessions: async_sessionmaker[AsyncSession], grant: LeaseGrant
) -> AsyncIterator[AsyncSession]:
    """A write transaction that commits only while ``grant`` is the current epoch."""
    async with session_scope(sessions) as session:
        await hold(session, grant)
        yield session
