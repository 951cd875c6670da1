"""Check the registry's tokens and deposit factory against the chain before watching it
(docs/DESIGN.md §5).

A wrong address or decimals in the registry would credit the wrong amounts, and a factory that
does not predict our deposit addresses would leave every payment stuck, so a mismatch stops
the chain's watcher with an operator alert instead of guessing.
"""

from __future__ import annotations

from eth_abi.abi import decode

from stablegate.chain.evm.contracts import standard_token
from stablegate.chain.evm.factory_check import factory_mismatch
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.evm.wallet import eth_call
from stablegate.chain.registry import Chain


async def chain_mismatches(rpc: RpcClient, chain: Chain) -> list[str]:
    """Every reason to refuse the chain: its tokens, then its deposit factory."""
    problems = await token_mismatches(rpc, chain)
    factory = await factory_mismatch(rpc, chain)
    return problems + ([factory] if factory else [])


async def token_mismatches(rpc: RpcClient, chain: Chain) -> list[str]:
    """Human-readable problems; empty when every token's decimals() and symbol() match."""
    erc20 = standard_token()
    problems: list[str] = []
    for token in chain.tokens:
        try:
            raw_decimals = await eth_call(rpc, token.address, erc20.encode_call("decimals"))
            raw_symbol = await eth_call(rpc, token.address, erc20.encode_call("symbol"))
        except RpcError as exc:
            if exc.revert_data is None and "revert" not in str(exc).lower():
                raise  # the node did not answer: retry later, do not judge the token
            problems.append(f"{token.symbol} at {token.address}: not an ERC-20 ({exc})")
            continue
        if not raw_decimals:
            problems.append(f"{token.symbol} at {token.address}: no contract there")
            continue
        decimals = int.from_bytes(raw_decimals[:32], "big")
        symbol = _symbol(raw_symbol)
        if decimals != token.decimals:
            problems.append(
                f"{token.symbol} at {token.address}: decimals() is {decimals}, "
                f"the registry says {token.decimals}"
            )
        expected = token.onchain_symbol or token.symbol
        if symbol is not None and symbol != expected:
            problems.append(
                f"{token.symbol} at {token.address}: symbol() is {symbol!r}, expected {expected!r}"
            )
    return problems


def _symbol(raw: bytes) -> str | None:
    """symbol() as a string; old tokens return bytes32 instead of a string."""
    try:
        (value,) = decode(["string"], raw)
        return str(value)
    except Exception:
        if len(raw) == 32:
            return raw.rstrip(b"\0").decode("utf-8", "replace")
        return None
