"""Leases: at most one active holder per name ("watcher:1", "sweeper:56"), fenced by an epoch.

The holder renews every tick. Another process takes over only after ``expires_at`` passed,
and taking over bumps the epoch; every write of the holder is conditioned on its epoch, so a
paused or partitioned old holder can write nothing once it lost the lease.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import Lease


@dataclass(frozen=True)
class LeaseGrant:
    name: str
    holder: str
    epoch: int
    expires_at_ms: int


async def acquire_or_renew(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    *,
    name: str,
    holder: str,
    ttl_ms: int,
) -> LeaseGrant | None:
    """Renew our lease, or take it when free or expired; None while someone else holds it."""
    now = clock.now_ms()
    try:
        async with session_scope(sessions) as session:
            lease = await session.scalar(select(Lease).where(Lease.name == name).with_for_update())
            if lease is None:
                session.add(Lease(name=name, holder=holder, epoch=1, expires_at_ms=now + ttl_ms))
                await session.flush()
                return LeaseGrant(name, holder, 1, now + ttl_ms)
            if lease.holder == holder and lease.expires_at_ms >= now:
                lease.expires_at_ms = now + ttl_ms
                return LeaseGrant(name, holder, lease.epoch, lease.expires_at_ms)
            if lease.expires_at_ms < now:
                lease.holder = holder
                lease.epoch += 1
                lease.expires_at_ms = now + ttl_ms
                return LeaseGrant(name, holder, lease.epoch, lease.expires_at_ms)
            return None
    except IntegrityError:
        return None  # another process created the row first; try again next tick


class Fenced(Exception):
    """Our lease epoch (or what we expected to find) no longer holds: the transaction must
    not commit."""


async def hold(session: AsyncSession, grant: LeaseGrant) -> None:
    """Inside a write transaction: lock the lease row and check our epoch is still current.

    Locking makes a successor taking the lease wait for this transaction, or this transaction
    see the successor's epoch; either way a deposed holder's writes never commit.
    """
    epoch = await session.scalar(
        select(Lease.epoch).where(Lease.name == grant.name).with_for_update()
    )
    if epoch != grant.epoch:
        raise Fenced(f"lease epoch is {epoch}, ours is {grant.epoch}")


async def release(sessions: async_sessionmaker[AsyncSession], grant: LeaseGrant) -> None:
    """Give the lease up at a clean shutdown so a successor need not wait for it to expire."""
    async with session_scope(sessions) as session:
        await session.execute(
            update(Lease)
            .where(
                Lease.name == grant.name, Lease.epoch == grant.epoch, Lease.holder == grant.holder
            )
            .values(expires_at_ms=0)
        )
