"""What the watchers know about each chain, for `stablegate chain status` and /public/chains."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.models import ChainState, Lease


async def chain_statuses(
    session: AsyncSession, registry: ChainRegistry, now_ms: int | None = None
) -> list[dict[str, Any]]:
    states = {s.chain_id: s for s in (await session.scalars(select(ChainState))).all()}
    leases = {lease.name: lease for lease in (await session.scalars(select(Lease))).all()}
    rows = []
    for chain in registry.with_rpc():
        state = states.get(chain.id)
        lease = leases.get(f"watcher:{chain.id}")
        alive = lease is not None and (now_ms is None or lease.expires_at_ms >= now_ms)
        rows.append(
            {
                "chainId": chain.id,
                "name": chain.name,
                "head": state.head_number if state else None,
                "final": state.final_number if state else None,
                "cursor": state.cursor_number if state else None,
                "lag": state.head_number - state.cursor_number if state else None,
                "finalityMode": state.finality_mode if state else None,
                "finalAdvancedAt": state.final_advanced_at_ms if state else None,
                "headSeenAt": state.head_seen_at_ms if state else None,
                "watcher": (lease.holder if alive else "none") if lease else "none",
                "reconcileMismatches": state.reconcile_mismatches if state else None,
                "reconciledAt": state.reconciled_at_ms if state else None,
            }
        )
    return rows
