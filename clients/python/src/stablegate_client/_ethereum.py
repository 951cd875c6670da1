"""Just enough Ethereum to send one contract call without web3: addresses, ABI words, RLP, and
EIP-1559 transactions signed with secp256k1 through ``cryptography``.

Signing: ``cryptography`` signs the Keccak digest as a prehashed message with deterministic
(RFC 6979) nonces, so the same transaction always gets the same signature, and no random-number
failure can leak the key. Ethereum also needs the parity of the nonce point's y coordinate
(``yParity``), which ECDSA libraries do not return. We know the key ``d``, so the nonce is
``k = s⁻¹(e + r·d) mod n``, and ``k·G`` (computed by ``cryptography`` as a public key) gives that
y; the signature is then normalised to low ``s`` (EIP-2), which flips the parity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from stablegate_client._keccak import keccak256

# Order of the secp256k1 group.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BYTES32 = re.compile(r"(0x)?[0-9a-fA-F]{64}")

RlpItem = bytes | int | Sequence["RlpItem"]


def checksum_address(address: str) -> str:
    """EIP-55 form of ``address``; refuses malformed ones and mixed case with a bad checksum."""
    if not _ADDRESS.fullmatch(address):
        raise ValueError(f"not an address (0x and 40 hex digits): {address!r}")
    lower = address[2:].lower()
    digest = keccak256(lower.encode("ascii")).hex()
    checked = "0x" + "".join(
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(lower)
    )
    body = address[2:]
    if body != body.lower() and body != body.upper() and address != checked:
        raise ValueError(f"address checksum does not match (a typo?): {address}")
    return checked


def address_bytes(address: str) -> bytes:
    return bytes.fromhex(checksum_address(address)[2:])


def bytes32(value: str | bytes) -> bytes:
    """32 bytes from bytes or hex (with or without ``0x``)."""
    if isinstance(value, bytes):
        if len(value) != 32:
            raise ValueError(f"expected 32 bytes, got {len(value)}")
        return value
    if not _BYTES32.fullmatch(value):
        raise ValueError(f"expected 32 bytes as 64 hex digits: {value!r}")
    return bytes.fromhex(value.removeprefix("0x"))


def function_selector(signature: str) -> bytes:
    """First four bytes of ``keccak256("name(type,...)")``."""
    return keccak256(signature.encode("ascii"))[:4]


def abi_word(value: int | bytes) -> bytes:
    """One static ABI word: an unsigned int, or an address / bytes32 left-padded to 32 bytes."""
    if isinstance(value, int):
        if not 0 <= value < 2**256:
            raise ValueError("uint256 out of range")
        return value.to_bytes(32, "big")
    if len(value) > 32:
        raise ValueError("more than 32 bytes")
    return value.rjust(32, b"\x00")


def rlp_encode(item: RlpItem) -> bytes:
    """Recursive Length Prefix: bytes, non-negative ints (minimal big-endian) and lists."""
    if isinstance(item, int):
        if item < 0:
            raise ValueError("RLP encodes non-negative integers only")
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _rlp_length(len(item), 0x80) + item
    payload = b"".join(rlp_encode(child) for child in item)
    return _rlp_length(len(payload), 0xC0) + payload


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(encoded)]) + encoded


class EthereumKey:
    """A secp256k1 private key that signs Ethereum transactions."""

    def __init__(self, private_key: str | bytes) -> None:
        raw = bytes32(private_key)
        secret = int.from_bytes(raw, "big")
        if not 0 < secret < _N:
            raise ValueError("not a valid secp256k1 private key")
        self._key = ec.derive_private_key(secret, ec.SECP256K1())
        point = self._key.public_key().public_numbers()
        public = point.x.to_bytes(32, "big") + point.y.to_bytes(32, "big")
        self.address = checksum_address("0x" + keccak256(public)[12:].hex())

    def __repr__(self) -> str:  # never show the key
        return f"EthereumKey({self.address})"

    def sign_digest(self, digest: bytes) -> tuple[int, int, int]:
        """(yParity, r, s) over a 32-byte digest, low ``s``."""
        der = self._key.sign(
            digest, ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True)
        )
        r, s = decode_dss_signature(der)
        d = self._key.private_numbers().private_value
        k = pow(s, -1, _N) * (int.from_bytes(digest, "big") + r * d) % _N
        nonce_point = ec.derive_private_key(k, ec.SECP256K1()).public_key().public_numbers()
        if nonce_point.x % _N != r:  # cannot happen unless the signature is not ours
            raise RuntimeError("could not recover the signature's nonce point")
        parity = nonce_point.y & 1
        if s > _N // 2:
            s, parity = _N - s, parity ^ 1
        return parity, r, s


@dataclass(frozen=True)
class Eip1559Transaction:
    """A type-2 transaction (no access list)."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: str | None  # None: contract creation
    value: int = 0
    data: bytes = b""

    def _fields(self) -> list[RlpItem]:
        to = b"" if self.to is None else address_bytes(self.to)
        return [
            self.chain_id,
            self.nonce,
            self.max_priority_fee_per_gas,
            self.max_fee_per_gas,
            self.gas,
            to,
            self.value,
            self.data,
            [],  # access list
        ]

    def signing_hash(self) -> bytes:
        return keccak256(b"\x02" + rlp_encode(self._fields()))

    def sign(self, key: EthereumKey) -> bytes:
        """The raw signed transaction for ``eth_sendRawTransaction``; its hash is keccak of it."""
        parity, r, s = key.sign_digest(self.signing_hash())
        return b"\x02" + rlp_encode([*self._fields(), parity, r, s])
