"""Which candidate deposits hold enough to be worth a flush: balances read on chain, batched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stablegate.chain.evm.contracts import standard_token
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.registry import Chain
from stablegate.sweeper.batch import NATIVE
from stablegate.sweeper.options import SweepOptions
from stablegate.sweeper.service import Candidate


async def read_balances(rpc: RpcClient, holdings: Sequence[tuple[str, str]]) -> list[int | None]:
    """Balance of each (holder, token), the zero address meaning native coin; None when the
    call failed (not a token, an odd answer): such a holding waits for the next round."""
    if not holdings:
        return []
    token = standard_token()
    calls: list[tuple[str, list[Any]]] = []
    for holder, asset in holdings:
        if asset == NATIVE:
            calls.append(("eth_getBalance", [holder, "latest"]))
        else:
            data = "0x" + token.encode_call("balanceOf", holder).hex()
            calls.append(("eth_call", [{"to": asset, "data": data}, "latest"]))
    balances: list[int | None] = []
    for answer in await rpc.batch(calls, return_exceptions=True):
        if isinstance(answer, RpcError) or not isinstance(answer, str) or len(answer) < 3:
            balances.append(None)
        else:
            balances.append(int(answer[:66], 16))
    return balances


async def worth_sweeping(
    rpc: RpcClient, chain: Chain, options: SweepOptions, candidates: Sequence[Candidate]
) -> list[Candidate]:
    """Candidates whose deposit holds at least the token's minimum, plus, when ``native_min``
    is set, the native coin of those same deposits (native coin is never credited, so it is
    only collected from deposits swept anyway)."""
    balances = await read_balances(rpc, [(c.deposit_address, c.token_address) for c in candidates])
    found = [
        c
        for c, balance in zip(candidates, balances, strict=True)
        if balance is not None and balance >= options.minimum(chain, c.token_address)
    ]
    if options.native_min is None or not found:
        return found
    deposits = {c.deposit_address: c for c in found}
    natives = await read_balances(rpc, [(d, NATIVE) for d in deposits])
    for (deposit, c), balance in zip(deposits.items(), natives, strict=True):
        if balance is not None and balance >= options.native_min:
            found.append(
                Candidate(c.order_id, deposit, c.payout_address, c.deposit_salt, NATIVE, 0, 0)
            )
    return found
