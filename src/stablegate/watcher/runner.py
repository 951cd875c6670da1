"""Run the watchers of the configured chains (`stablegate watch`, and inside `stablegate run`)."""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.registry import Chain, ChainRegistry
from stablegate.clock import Clock
from stablegate.config import Settings
from stablegate.orders.context import OrderContext
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions

log = structlog.get_logger("stablegate.watcher")


def chains_to_watch(registry: ChainRegistry, chain_ids: list[int] | None) -> list[Chain]:
    chains = registry.with_rpc()
    if chain_ids:
        missing = set(chain_ids) - {c.id for c in chains}
        if missing:
            raise ValueError(f"no RPC configured for chain(s) {sorted(missing)}")
        chains = [c for c in chains if c.id in chain_ids]
    return chains


async def run_watchers(
    settings: Settings,
    registry: ChainRegistry,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    stop: asyncio.Event,
    *,
    chain_ids: list[int] | None = None,
    options: WatcherOptions | None = None,
) -> None:
    chains = chains_to_watch(registry, chain_ids)
    orders = OrderContext(registry, settings.public_url, settings.max_order_amount)
    clients = [RpcClient(list(chain.rpc_urls)) for chain in chains]
    try:
        async with asyncio.TaskGroup() as group:
            for chain, rpc in zip(chains, clients, strict=True):
                chain_options = options or WatcherOptions(
                    poll_interval=min(max(chain.block_time / 2, 0.2), 5.0),
                    lease_ttl_ms=settings.watcher_lease_ttl_ms,
                    watch_days=settings.watch_days,
                    step_timeout=settings.step_timeout_s,
                )
                watcher = ChainWatcher(chain, sessions, clock, rpc, orders, options=chain_options)
                group.create_task(watcher.run_forever(stop))
    finally:
        for rpc in clients:
            await rpc.aclose()
