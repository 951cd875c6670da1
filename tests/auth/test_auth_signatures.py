"""V1/V2 primitives: encodings, wrong keys and curves, garbage that must not raise."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from stablegate.auth.signatures import load_public_key_pem, sign_v2, verify_v1, verify_v2
from stablegate.errors import InvalidRequest

MESSAGE = b"ak_x\n1\n\nPOST\n/p\n\n" + b"0" * 64


def _pem(public_key: object) -> bytes:
    assert hasattr(public_key, "public_bytes")
    pem: bytes = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_der_base64_and_hex(private_key: ec.EllipticCurvePrivateKey) -> None:
    der = private_key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    public = private_key.public_key()
    assert verify_v1(public, MESSAGE, base64.b64encode(der).decode())
    assert verify_v1(public, MESSAGE, der.hex())
    assert not verify_v1(public, MESSAGE + b"x", der.hex())


def test_wrong_key_fails(private_key: ec.EllipticCurvePrivateKey) -> None:
    der = private_key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not verify_v1(other, MESSAGE, base64.b64encode(der).decode())


def test_other_curve_key_is_never_accepted() -> None:
    k1 = ec.generate_private_key(ec.SECP256K1())
    der = k1.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert not verify_v1(k1.public_key(), MESSAGE, base64.b64encode(der).decode())


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "not base64 !!",
        "MEYC",
        "00",
        "ff" * 300,
        "A" * 86,
        "A" * 88,
        "é" * 10,
        "MEYCIQ\x00",
        base64.b64encode(b"\x00" * 64).decode(),
        base64.b64encode(b"\xff" * 64).decode(),
        "3006020100020100",
        "=" * 8,
    ],
)
def test_garbage_v1_is_false(value: str, private_key: ec.EllipticCurvePrivateKey) -> None:
    assert verify_v1(private_key.public_key(), MESSAGE, value) is False


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_v1_never_raises(value: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert verify_v1(key, MESSAGE, value) is False


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100))
def test_v2_never_raises(value: str) -> None:
    assert verify_v2(b"s", MESSAGE, value) is False


def test_v2_wrong_secret_and_case() -> None:
    good = sign_v2(b"secret", MESSAGE)
    assert good == good.lower() and len(good) == 64
    assert verify_v2(b"secret", MESSAGE, good)
    assert verify_v2(b"secret", MESSAGE, good.upper())
    assert not verify_v2(b"other", MESSAGE, good)
    assert not verify_v2(b"secret", MESSAGE + b" ", good)
    assert not verify_v2(b"secret", MESSAGE, good[:-1])


def test_load_public_key_accepts_p256_pem_str_and_bytes(
    private_key: ec.EllipticCurvePrivateKey,
) -> None:
    pem = _pem(private_key.public_key())
    assert load_public_key_pem(pem).public_numbers() == private_key.public_key().public_numbers()
    assert isinstance(load_public_key_pem(pem.decode()), ec.EllipticCurvePublicKey)


@pytest.mark.parametrize(
    "make",
    [
        lambda: _pem(ec.generate_private_key(ec.SECP256K1()).public_key()),
        lambda: _pem(ec.generate_private_key(ec.SECP384R1()).public_key()),
        lambda: _pem(rsa.generate_private_key(65537, 2048).public_key()),
        lambda: _pem(ed25519.Ed25519PrivateKey.generate().public_key()),
        lambda: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        lambda: b"",
        lambda: "not a pem é",
        lambda: b"\xff\xfe",
    ],
)
def test_load_public_key_rejects(make: object) -> None:
    assert callable(make)
    with pytest.raises(InvalidRequest) as info:
        load_public_key_pem(make())
    assert info.value.code == "invalid_public_key"
    assert info.value.status == 400
