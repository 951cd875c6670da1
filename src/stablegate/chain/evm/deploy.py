"""Deploying the gateway contracts (any chain) and the dev-chain tokens (anvil only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import forwarder_factory, standard_token, tether_token
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import eth_call, get_code, transact


class DeployError(RuntimeError):
    """The chain lacks the CREATE2 deployer, or a deployment did not land where expected."""


@dataclass(frozen=True)
class DeployedContracts:
    factory: str
    implementation: str


async def deploy_gateway_contracts(rpc: RpcClient, account: LocalAccount) -> DeployedContracts:
    """Deploys the ForwarderFactory (and with it the Forwarder implementation) through the
    deterministic CREATE2 deployer, unless it is already there; checks both addresses."""
    expected = DeployedContracts(create2.factory_address(), create2.implementation_address())
    if not await get_code(rpc, expected.factory):
        if not await get_code(rpc, create2.CREATE2_DEPLOYER):
            raise DeployError(f"no CREATE2 deployer at {create2.CREATE2_DEPLOYER} on this chain")
        calldata = create2.FACTORY_DEPLOY_SALT + create2.factory_deploy_code()
        await transact(rpc, account, create2.CREATE2_DEPLOYER, calldata)
    # A CREATE2 address commits to the creation code, so code there is our factory.
    if not await get_code(rpc, expected.factory):
        raise DeployError(f"no code at the factory address {expected.factory}")
    factory = forwarder_factory()
    result = await eth_call(rpc, expected.factory, factory.encode_call("implementation"))
    (implementation,) = factory.decode_result("implementation", result)
    if to_checksum_address(implementation) != expected.implementation:
        raise DeployError(f"factory reports implementation {implementation}")
    if not await get_code(rpc, expected.implementation):
        raise DeployError(f"no code at the implementation address {expected.implementation}")
    return expected


DEV_TOKENS: dict[str, tuple[str, int]] = {
    # symbol: (name, decimals)
    "USDT": ("Tether USD", 6),
    "USDC": ("USD Coin", 6),
    "USDT18": ("Tether USD (BSC-like, 18 decimals)", 18),
}


async def deploy_dev_tokens(
    rpc: RpcClient,
    owner_account: LocalAccount,
    holders: Sequence[str],
    amount_whole: int = 1_000_000,
) -> dict[str, str]:
    """Deploys the dev ``USDT`` (TetherToken), ``USDC`` and ``USDT18`` (StandardToken), owned by
    ``owner_account``, and mints ``amount_whole`` tokens to each holder. Returns symbol -> address.
    """
    addresses: dict[str, str] = {}
    for symbol, (name, decimals) in DEV_TOKENS.items():
        artifact = tether_token() if symbol == "USDT" else standard_token()
        code = (
            artifact.deploy_code()
            if symbol == "USDT"
            else artifact.deploy_code(name, symbol, decimals)
        )
        receipt = await transact(rpc, owner_account, None, code)
        address = receipt["contractAddress"]
        if address is None:
            raise DeployError(f"{symbol}: no contract address in the receipt")
        addresses[symbol] = to_checksum_address(address)
        for holder in holders:
            mint = artifact.encode_call(
                "mint", to_checksum_address(holder), amount_whole * 10**decimals
            )
            await transact(rpc, owner_account, addresses[symbol], mint)
    return addresses
