"""Deposit addresses computed off chain: the same derivations the contracts do on chain.

An order's deposit address is the CREATE2 address, from the ForwarderFactory, of an EIP-1167 clone
of the Forwarder implementation, with salt ``keccak256(abi.encode(payout, keccak256(orderId)))``.
Nothing needs to be deployed to know it. The factory itself is deployed through the deterministic
CREATE2 deployer with :data:`FACTORY_DEPLOY_SALT`, and creates the implementation in its
constructor (CREATE from the factory, nonce 1), so both have one address on every EVM chain.
"""

from __future__ import annotations

from functools import cache, lru_cache

from eth_utils.address import to_canonical_address, to_checksum_address
from sha3 import keccak_256

from stablegate.chain.evm.contracts import forwarder_factory

# The deterministic deployment proxy (Arachnid/deterministic-deployment-proxy), present on nearly
# every EVM chain: calldata is salt (32 bytes) ++ creation code; it returns the new address.
CREATE2_DEPLOYER = "0x4e59b44847b379578588920ca78fbf26c0b4956c"

# keccak256("stablegate.ForwarderFactory.v1"); a test checks the derivation.
FACTORY_DEPLOY_SALT = bytes.fromhex(
    "d36edeef64a522f0e3e12432e5fac4b98acd732b5ee210181afc8fae636ff6b7"
)

_CLONE_PREFIX = bytes.fromhex("3d602d80600a3d3981f3363d3d373d3d3d363d73")
_CLONE_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


def keccak(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not SHA3-256) in C: four per new order (through eth-utils and
    pycryptodome each took 15 times as long)."""
    digest: bytes = keccak_256(data).digest()
    return digest


def deposit_salt(order_id: str) -> bytes:
    """``keccak256(UTF-8 bytes of orderId)``, the per-order half of the factory's salt."""
    return bytes(keccak(order_id.encode("utf-8")))


def factory_salt(payout: str, deposit_salt: bytes) -> bytes:
    """``keccak256(abi.encode(payout, depositSalt))``: the CREATE2 salt the factory uses.

    ``abi.encode`` of an address and a bytes32 is the address left-padded to 32 bytes followed by
    the 32 bytes (written out here: eth-abi's general encoder cost more than the two hashes)."""
    _check_bytes32(deposit_salt)
    return bytes(keccak(bytes(12) + _address_bytes(payout) + deposit_salt))


def create2_address(deployer: str, salt: bytes, init_code_hash: bytes) -> str:
    """``keccak256(0xff ++ deployer ++ salt ++ keccak256(initCode))[12:]``, checksummed."""
    _check_bytes32(salt)
    _check_bytes32(init_code_hash)
    digest = keccak(b"\xff" + _address_bytes(deployer) + salt + init_code_hash)
    return _checksummed(digest[12:])


def create_address(sender: str, nonce: int) -> str:
    """The address of a contract created by ``sender`` with CREATE at ``nonce`` (< 0x80)."""
    if not 1 <= nonce < 0x80:
        # Contract nonces start at 1; larger nonces need longer RLP and are never used here.
        raise ValueError("nonce must be in [1, 0x7f]")
    rlp = bytes([0xD6, 0x94]) + to_canonical_address(sender) + bytes([nonce])
    return str(to_checksum_address(keccak(rlp)[12:]))


def clone_init_code(implementation: str) -> bytes:
    """EIP-1167 minimal proxy creation code delegating to ``implementation``."""
    return _CLONE_PREFIX + to_canonical_address(implementation) + _CLONE_SUFFIX


def forwarder_address(factory: str, implementation: str, payout: str, deposit_salt: bytes) -> str:
    """The deposit address of (payout, depositSalt), as ``factory.predictAddress`` returns it."""
    return create2_address(
        factory, factory_salt(payout, deposit_salt), _clone_init_code_hash(implementation)
    )


@cache
def _clone_init_code_hash(implementation: str) -> bytes:
    return bytes(keccak(clone_init_code(implementation)))


def factory_deploy_code() -> bytes:
    """What is sent to the CREATE2 deployer after the salt (the factory takes no arguments)."""
    return forwarder_factory().deploy_code()


@cache
def factory_address() -> str:
    """Where the committed ForwarderFactory bytecode lives on every chain."""
    return create2_address(CREATE2_DEPLOYER, FACTORY_DEPLOY_SALT, keccak(factory_deploy_code()))


@cache
def implementation_address() -> str:
    """The Forwarder implementation the factory creates in its constructor."""
    return create_address(factory_address(), 1)


@cache  # one pair per chains-file entry, asked for every new order
def deposit_contracts(factory: str | None, implementation: str | None) -> tuple[str, str]:
    """The (factory, implementation) pair a chains file entry means. Without ``factory``: the
    canonical one. Without ``implementation``: the one that factory created in its constructor
    (CREATE at nonce 1), never the canonical one, which would give another factory's clones
    addresses nothing can deploy to."""
    factory = factory or factory_address()
    return factory, implementation or create_address(factory, 1)


def deposit_address(order_id: str, payout: str) -> str:
    """An order's deposit address with the canonical factory and implementation."""
    return forwarder_address(
        factory_address(), implementation_address(), payout, deposit_salt(order_id)
    )


@lru_cache(maxsize=4096)
def _address_bytes(address: str) -> bytes:
    """The 20 bytes of an address, remembered: every order of a merchant hashes the same payout
    address and factory (eth_utils' checks cost more than the hashes)."""
    return bytes(to_canonical_address(address))


def _checksummed(raw: bytes) -> str:
    """EIP-55 mixed case of 20 address bytes: a hex digit is upper case where the keccak of the
    lowercase hex has a nibble of 8 or more (to_checksum_address's result, at a third of its
    cost on a new order's path)."""
    lower = raw.hex()
    nibbles = bytes(keccak(lower.encode("ascii"))).hex()
    return "0x" + "".join(
        c.upper() if n in "89abcdef" else c for c, n in zip(lower, nibbles, strict=False)
    )


def _check_bytes32(value: bytes) -> None:
    if len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
