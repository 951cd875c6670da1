"""The SDK's hand-written Ethereum pieces: RLP, EIP-55, ABI words, EIP-1559 signing.

Signed transactions are compared byte for byte with eth_account (both use RFC 6979 nonces), so a
wrong field order, length prefix or yParity shows here; tests/clients/test_client_flush.py has
anvil accept them.
"""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from stablegate_client._ethereum import (
    Eip1559Transaction,
    EthereumKey,
    abi_word,
    address_bytes,
    bytes32,
    checksum_address,
    function_selector,
    rlp_encode,
)
from stablegate_client._flush import deposit_salt

from stablegate.chain.anvil import ANVIL_DEFAULT_KEYS
from stablegate.chain.evm import create2
from stablegate.chain.evm.contracts import forwarder_factory

# From the Ethereum wiki's RLP page.
RLP_VECTORS = [
    (b"dog", "83646f67"),
    ([b"cat", b"dog"], "c88363617483646f67"),
    (b"", "80"),
    ([], "c0"),
    (0, "80"),
    (b"\x00", "00"),
    (15, "0f"),
    (1024, "820400"),
    ([[], [[]], [[], [[]]]], "c7c0c1c0c3c0c1c0"),
    (
        b"Lorem ipsum dolor sit amet, consectetur adipisicing elit",
        "b838" + b"Lorem ipsum dolor sit amet, consectetur adipisicing elit".hex(),
    ),
]


@pytest.mark.parametrize(("item", "encoded"), RLP_VECTORS)
def test_rlp_vectors(item: object, encoded: str) -> None:
    assert rlp_encode(item).hex() == encoded  # type: ignore[arg-type]


def test_rlp_long_list_prefix() -> None:
    items = [b"x" * 30, b"y" * 30]
    payload = b"".join(rlp_encode(i) for i in items)
    assert rlp_encode(items) == bytes([0xF7 + 1, len(payload)]) + payload


# EIP-55's own examples.
EIP55 = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("address", EIP55)
def test_eip55_checksums(address: str) -> None:
    assert checksum_address(address.lower()) == address
    assert checksum_address(address.upper().replace("0X", "0x")) == address


def test_a_mistyped_checksummed_address_is_refused() -> None:
    typo = EIP55[0][:-1] + ("d" if EIP55[0][-1] != "d" else "e")
    with pytest.raises(ValueError, match="checksum"):
        checksum_address(typo[:-1] + typo[-1].upper())
    with pytest.raises(ValueError, match="not an address"):
        checksum_address("0x1234")


def test_key_address_matches_eth_account() -> None:
    for key in ANVIL_DEFAULT_KEYS[:4]:
        assert EthereumKey(key).address == Account.from_key(key).address
    assert "ac0974" not in repr(EthereumKey(ANVIL_DEFAULT_KEYS[0]))


def test_invalid_private_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        EthereumKey("0x" + "00" * 32)
    with pytest.raises(ValueError):
        EthereumKey("0x" + "ff" * 32)
    with pytest.raises(ValueError):
        EthereumKey("0x1234")


def test_deploy_and_flush_one_calldata_matches_the_gateways_abi_encoder() -> None:
    payout, token = EIP55[0], EIP55[1]
    salt = bytes32(deposit_salt("ord_abc"))
    ours = function_selector("deployAndFlushOne(address,bytes32,address)") + b"".join(
        (abi_word(address_bytes(payout)), abi_word(salt), abi_word(address_bytes(token)))
    )
    assert ours == forwarder_factory().encode_call("deployAndFlushOne", payout, salt, token)
    assert function_selector("predictAddress(address,bytes32)") == forwarder_factory().selector(
        "predictAddress"
    )


def test_deposit_salt_is_the_gateways() -> None:
    assert deposit_salt("ord_xyz") == "0x" + create2.deposit_salt("ord_xyz").hex()


@pytest.mark.parametrize("n", range(12))
def test_signed_eip1559_transactions_equal_eth_accounts(n: int) -> None:
    key = ANVIL_DEFAULT_KEYS[n % len(ANVIL_DEFAULT_KEYS)]
    data = os.urandom(n * 37)
    fields = {
        "chain_id": [1, 56, 31337, 8453][n % 4],
        "nonce": n * 1000,
        "max_priority_fee_per_gas": 10**9 + n,
        "max_fee_per_gas": 3 * 10**10 + n,
        "gas": 21_000 + n * 5_000,
        "to": None if n == 5 else EIP55[n % 4],
        "value": n * 10**17,
        "data": data,
    }
    ours = Eip1559Transaction(**fields).sign(EthereumKey(key))  # type: ignore[arg-type]
    reference = Account.sign_transaction(
        {
            "type": 2,
            "chainId": fields["chain_id"],
            "nonce": fields["nonce"],
            "maxPriorityFeePerGas": fields["max_priority_fee_per_gas"],
            "maxFeePerGas": fields["max_fee_per_gas"],
            "gas": fields["gas"],
            "value": fields["value"],
            "data": data,
            **({} if fields["to"] is None else {"to": fields["to"]}),
        },
        key,
    )
    assert ours == bytes(reference.raw_transaction)


def test_signatures_are_low_s_with_both_parities() -> None:
    key = EthereumKey(os.urandom(32))
    parities = set()
    for i in range(40):
        parity, _r, s = key.sign_digest(i.to_bytes(32, "big"))
        assert s <= 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2
        parities.add(parity)
    assert parities == {0, 1}
