"""Does a chain's ForwarderFactory predict the deposit addresses the gateway computes?

The gateway computes every deposit address off chain (create2.py) from the chains file's
``factory`` and ``implementation``. If they do not describe the contract really deployed at
``factory`` (another implementation, another factory version, nothing there), orders get
addresses that no factory can deploy to: paid, completed, and stuck forever. So before a chain
is used, the factory's own ``predictAddress`` is asked for a probe salt and must equal ours.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import forwarder_factory
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.evm.wallet import eth_call, get_code
from stablegate.chain.registry import Chain
from stablegate.errors import ChainUnavailable

log = structlog.get_logger("stablegate.chain")

PROBE_PAYOUT = "0x000000000000000000000000000000000000dEaD"
PROBE_SALT = bytes(keccak(b"stablegate.factory-probe"))
# A factory with no code may be deployed later: asked again after this long.
RECHECK_ABSENT_S = 60.0


def is_canonical(chain: Chain) -> bool:
    """The factory deployed through the CREATE2 deployer and its own implementation: one
    address pair on every chain, consistent by construction (deployable later if absent)."""
    pair = create2.deposit_contracts(chain.factory, chain.implementation)
    canonical = (create2.factory_address(), create2.implementation_address())
    return tuple(a.lower() for a in pair) == tuple(a.lower() for a in canonical)


async def factory_mismatch(rpc: RpcClient, chain: Chain) -> str | None:
    """Why the chain's deposit addresses cannot be trusted, or None when the factory agrees.

    Raises RpcError/OSError when the node does not answer: nothing is judged then."""
    factory, implementation = create2.deposit_contracts(chain.factory, chain.implementation)
    expected = create2.forwarder_address(factory, implementation, PROBE_PAYOUT, PROBE_SALT)
    if not await get_code(rpc, factory):
        if is_canonical(chain):
            log.warning(
                "factory_not_deployed",
                chain_id=chain.id,
                factory=factory,
                hint="deposits cannot be swept until `stablegate chain deploy` runs",
            )
            return None
        return f"no contract at the factory address {factory}"
    artifact = forwarder_factory()
    try:
        raw = await eth_call(
            rpc, factory, artifact.encode_call("predictAddress", PROBE_PAYOUT, PROBE_SALT)
        )
        (predicted,) = artifact.decode_result("predictAddress", raw)
    except RpcError as exc:
        if exc.revert_data is None and "revert" not in str(exc).lower():
            raise
        return f"the contract at {factory} is not a ForwarderFactory ({exc})"
    except Exception as exc:  # undecodable answer: not our contract
        return f"the contract at {factory} is not a ForwarderFactory ({exc})"
    if to_checksum_address(predicted) == expected:
        return None
    actual = await _implementation(rpc, factory)
    return (
        f"the factory {factory} predicts {to_checksum_address(predicted)} for a probe deposit, "
        f"the gateway computes {expected} with implementation {implementation}"
        + (f"; the factory's implementation() is {actual}" if actual else "")
        + ": set `implementation` in the chains file to the factory's (or remove both)"
    )


async def _implementation(rpc: RpcClient, factory: str) -> str | None:
    artifact = forwarder_factory()
    try:
        raw = await eth_call(rpc, factory, artifact.encode_call("implementation"))
        (value,) = artifact.decode_result("implementation", raw)
        return str(to_checksum_address(value))
    except Exception:  # only a hint for the message
        return None


class FactoryChecks:
    """The API's view: per chain, has its factory been checked and does it agree?

    A chain whose pair of addresses is not the canonical one is asked once (first order or
    start-up); until a node answers, orders on it are refused with ``chain_unavailable``."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._verdicts: dict[int, str | None] = {}
        self._absent_until: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.startup: asyncio.Task[None] | None = None

    def refused(self, chain_id: int) -> str | None:
        return self._verdicts.get(chain_id)

    async def require(self, chain: Chain) -> None:
        """Raises ChainUnavailable unless orders on ``chain`` get addresses its factory makes."""
        if is_canonical(chain) and chain.id not in self._verdicts:
            return  # consistent by construction: no node needs to be asked per request
        problem = await self.check(chain)
        if problem is not None:
            raise ChainUnavailable(
                f"chain {chain.id} is refused by this gateway: its deposit factory does not "
                "match the chains file; the operator has been told"
            )

    async def check(self, chain: Chain, *, strict: bool = True) -> str | None:
        if chain.id in self._verdicts:
            return self._verdicts[chain.id]
        if time.monotonic() < self._absent_until.get(chain.id, 0.0):
            return f"no contract at the factory address of chain {chain.id}"
        async with self._locks.setdefault(chain.id, asyncio.Lock()):
            if chain.id in self._verdicts:
                return self._verdicts[chain.id]
            rpc = RpcClient(list(chain.rpc_urls), timeout=self.timeout)
            try:
                problem = await factory_mismatch(rpc, chain)
            except (RpcError, OSError, TimeoutError) as exc:
                if is_canonical(chain) or not strict:
                    return None  # consistent by construction; asked again next time
                log.warning("factory_check_retry", chain_id=chain.id, error=str(exc))
                # The node's URL and error are the operator's business, not the merchant's.
                raise ChainUnavailable(
                    f"chain {chain.id}: its deposit factory could not be checked yet; "
                    "try again later"
                ) from None
            finally:
                await rpc.aclose()
            if problem is not None and problem.startswith("no contract"):
                self._absent_until[chain.id] = time.monotonic() + RECHECK_ABSENT_S
            else:
                self._verdicts[chain.id] = problem
            if problem is not None:
                log.error(
                    "operator_alert",
                    alert="deposit factory does not match the chains file: chain refused",
                    chain_id=chain.id,
                    problem=problem,
                )
            return problem

    def start(self, chains: list[Chain]) -> asyncio.Task[None]:
        """At start-up, in the background: every chain once, so a mismatch is logged at once."""
        self.startup = asyncio.create_task(self.check_all(chains), name="factory-checks")
        return self.startup

    async def check_all(self, chains: list[Chain]) -> None:
        for chain in chains:
            try:
                await self.check(chain, strict=False)
            except Exception as exc:  # a log line, never a crash of the API
                log.warning("factory_check_failed", chain_id=chain.id, error=str(exc))
