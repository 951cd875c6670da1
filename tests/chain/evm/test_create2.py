"""Deposit addresses computed off chain (no node): derivations and pinned addresses."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import forwarder_factory

PAYOUT = "0x1111111111111111111111111111111111111111"
OTHER_PAYOUT = "0x2222222222222222222222222222222222222222"

# Changing these changes every merchant's deposit addresses: only with a new factory version.
PINNED_FACTORY = "0x7f2517A5165033a3162AA02cbacb4E0978AA5A47"
PINNED_IMPLEMENTATION = "0xf3663Ab2E6Ea4168bD50Fa43FBC30b66EEEB9187"


def test_deposit_salt_is_keccak_of_utf8_order_id() -> None:
    assert create2.deposit_salt("ord_123") == keccak(b"ord_123")
    assert create2.deposit_salt("commande-é") == keccak("commande-é".encode())
    assert len(create2.deposit_salt("")) == 32


def test_factory_salt_is_keccak_of_abi_encoded_payout_and_deposit_salt() -> None:
    salt = create2.deposit_salt("ord_1")
    expected = keccak(bytes(12) + bytes.fromhex(PAYOUT[2:]) + salt)
    assert create2.factory_salt(PAYOUT, salt) == expected
    assert create2.factory_salt(PAYOUT, salt) == keccak(
        encode(["address", "bytes32"], [PAYOUT, salt])
    )
    assert create2.factory_salt(OTHER_PAYOUT, salt) != expected
    checksummed = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
    assert create2.factory_salt(checksummed.lower(), salt) == create2.factory_salt(
        checksummed, salt
    )


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33)])
def test_salts_must_be_32_bytes(bad: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        create2.factory_salt(PAYOUT, bad)
    with pytest.raises(ValueError, match="32 bytes"):
        create2.create2_address(PAYOUT, bad, bytes(32))


@pytest.mark.parametrize(
    ("deployer", "salt", "init_code", "expected"),
    [  # EIP-1014 examples
        ("0x" + "00" * 20, "00" * 32, "00", "0x4D1A2e2bB4F88F0250f26Ffff098B0b30B26BF38"),
        ("0xdeadbeef" + "00" * 16, "00" * 32, "00", "0xB928f69Bb1D91Cd65274e3c79d8986362984fDA3"),
        (
            "0xdeadbeef" + "00" * 16,
            "000000000000000000000000feed000000000000000000000000000000000000",
            "00",
            "0xD04116cDd17beBE565EB2422F2497E06cC1C9833",
        ),
        ("0x" + "00" * 20, "00" * 32, "deadbeef", "0x70f2b2914A2a4b783FaEFb75f459A580616Fcb5e"),
        (
            "0x00000000000000000000000000000000deadbeef",
            "00000000000000000000000000000000000000000000000000000000cafebabe",
            "deadbeef" * 11,
            "0x1d8bfDC5D46DC4f61D6b6115972536eBE6A8854C",
        ),
        ("0x" + "00" * 20, "00" * 32, "", "0xE33C0C7F7df4809055C3ebA6c09CFe4BaF1BD9e0"),
    ],
)
def test_create2_address_matches_eip1014(
    deployer: str, salt: str, init_code: str, expected: str
) -> None:
    init_code_hash = keccak(bytes.fromhex(init_code))
    assert create2.create2_address(deployer, bytes.fromhex(salt), init_code_hash) == expected


def test_create_address_known_vectors() -> None:
    sender = "0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0"
    assert create2.create_address(sender, 1) == "0x343c43A37D37dfF08AE8C4A11544c718AbB4fCF8"
    assert create2.create_address(sender, 2) == "0xf778B86FA74E846c4f0a1fBd1335FE81c00a0C91"
    with pytest.raises(ValueError, match="nonce"):
        create2.create_address(sender, 0x80)


def test_clone_init_code_is_eip1167() -> None:
    implementation = "0xbebebebebebebebebebebebebebebebebebebebe"
    code = create2.clone_init_code(implementation)
    assert code.hex() == (
        "3d602d80600a3d3981f3363d3d373d3d3d363d73"
        "bebebebebebebebebebebebebebebebebebebebe"
        "5af43d82803e903d91602b57fd5bf3"
    )


def test_factory_deploy_salt_derivation() -> None:
    assert keccak(b"stablegate.ForwarderFactory.v1") == create2.FACTORY_DEPLOY_SALT


def test_factory_and_implementation_addresses_are_pinned() -> None:
    code_hash = keccak(forwarder_factory().bytecode)
    assert create2.factory_address() == create2.create2_address(
        create2.CREATE2_DEPLOYER, create2.FACTORY_DEPLOY_SALT, code_hash
    )
    assert create2.implementation_address() == create2.create_address(create2.factory_address(), 1)
    assert (create2.factory_address(), create2.implementation_address()) == (
        PINNED_FACTORY,
        PINNED_IMPLEMENTATION,
    ), "the factory bytecode changed: every deposit address changes with it"


def test_forwarder_address_commits_to_payout_and_order() -> None:
    factory, implementation = create2.factory_address(), create2.implementation_address()
    salt = create2.deposit_salt("ord_1")
    address = create2.forwarder_address(factory, implementation, PAYOUT, salt)
    assert address == create2.deposit_address("ord_1", PAYOUT)
    assert address == create2.create2_address(
        factory,
        create2.factory_salt(PAYOUT, salt),
        keccak(create2.clone_init_code(implementation)),
    )
    others = {
        create2.forwarder_address(factory, implementation, OTHER_PAYOUT, salt),
        create2.forwarder_address(factory, implementation, PAYOUT, create2.deposit_salt("ord_2")),
        create2.forwarder_address(factory, OTHER_PAYOUT, PAYOUT, salt),
        create2.forwarder_address(OTHER_PAYOUT, implementation, PAYOUT, salt),
    }
    assert address not in others
    assert len(others) == 4
    lowered = (factory.lower(), implementation.lower(), PAYOUT, salt)
    assert create2.forwarder_address(*lowered) == address


def test_addresses_are_checksummed_as_eip55_says() -> None:
    """The hand-written EIP-55 casing against eth_utils' on many addresses, all-digit and
    all-letter ones included, and on what create2_address returns."""
    samples = [bytes(20), bytes([0xFF] * 20), bytes([0xAB] * 20)]
    samples += [keccak(n.to_bytes(4, "big"))[12:] for n in range(500)]
    for raw in samples:
        assert create2._checksummed(raw) == to_checksum_address(raw)
    digest = keccak(b"\xff" + bytes(20) + bytes(32) + bytes(32))
    zero = "0x" + "00" * 20
    assert create2.create2_address(zero, bytes(32), bytes(32)) == to_checksum_address(digest[12:])
