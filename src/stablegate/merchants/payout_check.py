"""Warn before a payout address is used where it may not belong to the merchant.

A contract wallet (a Safe, say) exists only on the chains it was deployed on: the same address
on another chain is usually nobody's, and funds sent there are lost. So an address with code on
some chains but not on others needs the operator's explicit --force.
"""

from __future__ import annotations

import asyncio

from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.evm.wallet import get_code
from stablegate.chain.registry import ChainRegistry


async def code_presence(
    registry: ChainRegistry, chain_ids: list[int], address: str
) -> dict[int, bool | None]:
    """chain id -> whether the address has code there (None: no RPC or it did not answer)."""

    async def one(chain_id: int) -> tuple[int, bool | None]:
        chain = registry.get(chain_id)
        if chain is None or not chain.rpc_urls:
            return chain_id, None
        rpc = RpcClient(list(chain.rpc_urls), timeout=5.0)
        try:
            return chain_id, bool(await get_code(rpc, address))
        except (RpcError, OSError):
            return chain_id, None
        finally:
            await rpc.aclose()

    return dict(await asyncio.gather(*(one(c) for c in chain_ids)))


def mixed_code_warning(presence: dict[int, bool | None]) -> str | None:
    with_code = sorted(c for c, has in presence.items() if has is True)
    without = sorted(c for c, has in presence.items() if has is False)
    if with_code and without:
        return (
            f"the payout address is a contract on chain(s) {with_code} but has no code on "
            f"chain(s) {without}: a contract wallet there is probably not the merchant's"
        )
    return None
