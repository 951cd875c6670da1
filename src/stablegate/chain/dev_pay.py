"""The dev chain's payer, behind the cashier page's "pay" button (docs/DESIGN.md §9): pays an
order's deposit address from one of anvil's default accounts. Only ever on the local dev chain.
"""

from __future__ import annotations

from eth_account import Account

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcError
from stablegate.chain.evm.wallet import TransactionReverted, transact
from stablegate.chain.registry import Chain

# Anvil's default account #2 (account #1 is the demo's customer).
DEV_PAYER_KEY = ANVIL_DEFAULT_KEYS[2]


class DevPayFailed(Exception):
    """The node refused, reverted or did not mine the payment in time."""


async def pay_from_dev_account(chain: Chain, *, token: str, to: str, amount: int) -> str:
    """Transfers ``amount`` base units of ``token`` to ``to`` and waits for it to be mined;
    the transaction hash."""
    payer = Account.from_key(DEV_PAYER_KEY)
    call = tether_token().encode_call("transfer", to, amount)
    try:
        async with RpcClient(list(chain.rpc_urls)) as rpc:
            receipt = await transact(rpc, payer, token, call, timeout=15)
    except (RpcError, TransactionReverted, OSError, TimeoutError) as exc:
        raise DevPayFailed(str(exc)) from exc
    return str(receipt["transactionHash"])
