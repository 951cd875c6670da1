"""Warn before a payout address is used where it may not belong to the merchant.

A contract wallet (a Safe, say) exists only on the chains it was deployed on: the same address
on another chain is usually nobody's, and funds sent there are lost. So an address with code on
some chains but not on others needs the operator's explicit --force. The merchants service runs
this check whenever it sets a payout address (see :class:`PayoutCodeCheck`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stablegate.chain.registry import ChainRegistry
from stablegate.errors import GatewayError

# chain id -> whether the address has code there (None: no RPC or it did not answer)
CodePresence = dict[int, bool | None]
# (chain ids, address) -> their CodePresence; tests hand in their own
CodeReader = Callable[[list[int], str], Awaitable[CodePresence]]


async def code_presence(
    registry: ChainRegistry, chain_ids: list[int], address: str
) -> CodePresence:
    """Asks each chain's RPC whether ``address`` has code there."""
    # Imported here: the RPC client pulls in eth_account, which every CLI command would
    # otherwise load at start-up through the merchants service.
    from stablegate.chain.evm.rpc import RpcClient
    from stablegate.chain.evm.rpc_errors import RpcError
    from stablegate.chain.evm.wallet import get_code

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

    return dict(await asyncio.gather(*(one(chain_id) for chain_id in chain_ids)))


def mixed_code_warning(presence: CodePresence) -> str | None:
    with_code = sorted(chain for chain, has in presence.items() if has is True)
    without = sorted(chain for chain, has in presence.items() if has is False)
    if with_code and without:
        return (
            f"the payout address is a contract on chain(s) {with_code} but has no code on "
            f"chain(s) {without}: a contract wallet there is probably not the merchant's"
        )
    return None


@dataclass(frozen=True)
class PayoutCodeCheck:
    """How the service asks the chains about a payout address, and whether the operator
    accepted a mixed answer beforehand (``force``)."""

    read_code: CodeReader
    force: bool = False

    @classmethod
    def through(cls, registry: ChainRegistry, *, force: bool = False) -> PayoutCodeCheck:
        """Reads code through each chain's RPC URLs in the registry."""
        return cls(read_code=functools.partial(code_presence, registry), force=force)

    async def run(self, chain_ids: list[int], address: str) -> str | None:
        """None when the chains agree (or cannot tell); the warning when they disagree and
        ``force`` is set; otherwise refuses with ``payout_code_mismatch``."""
        warning = mixed_code_warning(await self.read_code(chain_ids, address))
        if warning is None:
            return None
        if not self.force:
            raise GatewayError(
                f"{warning}; check it, then repeat with --force", code="payout_code_mismatch"
            )
        return warning
