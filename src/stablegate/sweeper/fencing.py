"""Writes fenced by the sweeper's lease epoch (lease ``sweeper:<chain id>``, section 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.db.engine import session_scope
from stablegate.models import Lease
from stablegate.watcher.lease import LeaseGrant


class Fenced(Exception):
    """Our lease epoch is no longer current: the transaction must not commit."""


@asynccontextmanager
async def fenced(
    sessions: async_sessionmaker[AsyncSession], grant: LeaseGrant
) -> AsyncIterator[AsyncSession]:
    """A write transaction that commits only while ``grant`` is the current epoch."""
    async with session_scope(sessions) as session:
        # Lock the lease row: a successor taking over waits for us, or we see its epoch.
        epoch = await session.scalar(
            select(Lease.epoch).where(Lease.name == grant.name).with_for_update()
        )
        if epoch != grant.epoch:
            raise Fenced(f"lease epoch is {epoch}, ours is {grant.epoch}")
        yield session
