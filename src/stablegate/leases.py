"""Leases: at most one active holder per name ("watcher:1", "sweeper:56"), fenced by an epoch
(docs/DESIGN.md §6).

The holder renews every step. Another process takes over only after ``expires_at`` passed,
and taking over bumps the epoch; every write of the holder is conditioned on its epoch, so a
paused or partitioned old holder can write nothing once it lost the lease.

:class:`ChainLease` is how a per-chain worker (the watcher, the sweeper) uses one: each step
renews it and runs under it, and a clean stop hands it over.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.clock import Clock
from stablegate.db.engine import session_scope
from stablegate.models import Lease
from stablegate.watchdog import StepStalled, Watchdog

Report = TypeVar("Report")


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
                return LeaseGrant(name=name, holder=holder, epoch=1, expires_at_ms=now + ttl_ms)
            if lease.holder == holder and lease.expires_at_ms >= now:
                lease.expires_at_ms = now + ttl_ms
                return LeaseGrant(
                    name=name, holder=holder, epoch=lease.epoch, expires_at_ms=lease.expires_at_ms
                )
            if lease.expires_at_ms < now:
                lease.holder = holder
                lease.epoch += 1
                lease.expires_at_ms = now + ttl_ms
                return LeaseGrant(
                    name=name, holder=holder, epoch=lease.epoch, expires_at_ms=lease.expires_at_ms
                )
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


@asynccontextmanager
async def fenced(
    sessions: async_sessionmaker[AsyncSession], grant: LeaseGrant
) -> AsyncIterator[AsyncSession]:
    """A write transaction that commits only while ``grant`` is the current epoch."""
    async with session_scope(sessions) as session:
        await hold(session, grant)
        yield session


class StepHalt(StrEnum):
    """Why a leased step did not run to its end (the worker reports it in its own terms)."""

    STANDBY = "standby"  # another process holds the lease
    FENCED = "fenced"  # lost the lease (or what the step expected moved): rolled back
    RETRY = "retry"  # an RPC or network failure; nothing written


class ChainLease:
    """The lease ``<worker>:<chain id>`` of one per-chain worker process.

    :meth:`run_step` renews it (or takes it when free) and runs one step under it;
    :meth:`release` hands it over at a clean stop.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        worker: str,
        chain_id: int,
        ttl_ms: int,
        holder: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.worker = worker
        self.chain_id = chain_id
        self.name = f"{worker}:{chain_id}"
        self.ttl_ms = ttl_ms
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.grant: LeaseGrant | None = None
        self.log = structlog.get_logger(f"stablegate.{worker}")

    async def run_step(
        self,
        step: Callable[[LeaseGrant], Awaitable[Report]],
        halted: Callable[[StepHalt, str], Report],
    ) -> Report:
        """``step(grant)``'s report while we hold the lease; ``halted(why, detail)`` when
        another process holds it, when a write found the lease (or the state) moved on, or
        when the chain's node failed. Every write of the step is fenced by ``grant``."""
        self.grant = await acquire_or_renew(
            self.sessions, self.clock, name=self.name, holder=self.holder, ttl_ms=self.ttl_ms
        )
        if self.grant is None:
            return halted(StepHalt.STANDBY, "")
        try:
            return await step(self.grant)
        except Fenced as exc:
            self.log.warning(f"{self.worker}_fenced", chain_id=self.chain_id, detail=str(exc))
            return halted(StepHalt.FENCED, str(exc))
        except (RpcError, OSError, TimeoutError) as exc:
            self.log.warning(f"{self.worker}_rpc_retry", chain_id=self.chain_id, error=str(exc))
            return halted(StepHalt.RETRY, str(exc))

    async def release(self) -> None:
        """Hand the lease over at once instead of after it runs out. Bounded, so a locked
        database cannot hold up a stop (the lease then simply expires)."""
        grant, self.grant = self.grant, None
        if grant is None:
            return
        handover = Watchdog(self.worker, 5.0, cancel_grace=1.0, chain_id=self.chain_id)
        for attempt in range(3):
            try:
                await handover.run(lambda: release(self.sessions, grant), "release")
                return
            except StepStalled:
                return
            except Exception as exc:  # the lease then simply expires
                self.log.warning("lease_release_failed", chain_id=self.chain_id, error=repr(exc))
                await asyncio.sleep(0.2 * (attempt + 1))
