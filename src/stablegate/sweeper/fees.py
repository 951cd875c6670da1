"""EIP-1559 fees for sweep transactions: the market price, the cap, replacement bumps, budget.

Pure rules apart from :func:`market_fees`, so they are tested without a node.
"""

from __future__ import annotations

from dataclasses import dataclass

from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError, RpcUnavailable
from stablegate.chain.evm.wallet import to_int

# Nodes (geth, erigon, reth) accept a replacement for the same nonce only when both the max fee
# and the priority fee rise by at least 10%; some pools ask 12.5%. We always ask 12.5%.
BUMP_NUMERATOR = 9
BUMP_DENOMINATOR = 8

DEFAULT_PRIORITY_FEE = 1_000_000_000


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True)
class Market:
    base_fee: int  # of the latest block
    priority_fee: int  # what the node suggests


async def market_fees(rpc: RpcClient) -> Market:
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    base_fee = to_int(block.get("baseFeePerGas") or "0x0")
    try:
        tip = to_int(await rpc.call("eth_maxPriorityFeePerGas", []))
    except RpcUnavailable:
        raise
    except RpcError:  # the node does not know the method
        tip = DEFAULT_PRIORITY_FEE
    return Market(base_fee, tip)


def initial_fees(market: Market, cap: int) -> Fees | None:
    """Fees for a new transaction; None when the market price (base fee + tip) is above the cap.

    The max fee leaves room for the base fee to double, as wallets do, but never exceeds the cap.
    """
    if market.base_fee + market.priority_fee > cap:
        return None
    return Fees(min(2 * market.base_fee + market.priority_fee, cap), market.priority_fee)


def _raised(value: int) -> int:
    return -(-value * BUMP_NUMERATOR // BUMP_DENOMINATOR)  # ceiling


def bumped_fees(old: Fees, market: Market, cap: int) -> Fees | None:
    """Fees for a replacement of a transaction paying ``old``: at least +12.5% on both, at least
    the current market, at most the cap; None when the cap leaves no room for a valid bump."""
    tip = max(_raised(old.max_priority_fee_per_gas), market.priority_fee)
    max_fee = max(_raised(old.max_fee_per_gas), 2 * market.base_fee + tip)
    max_fee = min(max_fee, cap)
    if max_fee < _raised(old.max_fee_per_gas) or tip > max_fee:
        return None
    return Fees(max_fee, tip)


def worst_case_cost(gas_limit: int, fees: Fees) -> int:
    """The most a transaction can cost: every unit of gas at the max fee."""
    return gas_limit * fees.max_fee_per_gas


def within_budget(committed: int, extra: int, budget: int) -> bool:
    """``committed``: fees paid this period plus the worst case of transactions in flight."""
    return committed + extra <= budget
