"""The SDK's pure-Python Keccak-256 (Ethereum's, not NIST SHA3-256) against known digests."""

from __future__ import annotations

import hashlib
import os

import pytest
from eth_utils.crypto import keccak
from stablegate_client._keccak import keccak256

from stablegate.chain.evm.create2 import FACTORY_DEPLOY_SALT

VECTORS = [
    (b"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
    (b"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
    (
        b"The quick brown fox jumps over the lazy dog",
        "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15",
    ),
    (
        b"transfer(address,uint256)",
        "a9059cbb2ab09eb219583f4a59a5d0623ade346d962bcd4e46b11da047c9049b",
    ),
]


@pytest.mark.parametrize(("data", "digest"), VECTORS)
def test_known_digests(data: bytes, digest: str) -> None:
    assert keccak256(data).hex() == digest


def test_differs_from_nist_sha3() -> None:
    assert keccak256(b"") != hashlib.sha3_256(b"").digest()


def test_the_factory_deploy_salt_of_the_gateway() -> None:
    assert keccak256(b"stablegate.ForwarderFactory.v1") == FACTORY_DEPLOY_SALT


@pytest.mark.parametrize("length", [0, 1, 55, 56, 135, 136, 137, 271, 272, 273, 1000])
def test_matches_a_reference_implementation_around_block_boundaries(length: int) -> None:
    data = os.urandom(length)
    assert keccak256(data) == keccak(data)
