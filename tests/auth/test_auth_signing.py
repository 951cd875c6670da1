"""The signing string and the docs/DESIGN.md §2 test vectors, verbatim."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from stablegate.auth.signatures import load_public_key_pem, sign_v2, verify_v1, verify_v2
from stablegate.auth.signing import body_sha256_hex, signing_string
from stablegate.errors import InvalidRequest

# --- docs/DESIGN.md §2, test vectors (copied verbatim) ---
API_KEY = "ak_test_0001"
REQUEST_TIME = "1696947336603"
RECV_WINDOW = "30000"
POST_PATH = "/api/v1/payment/createQrOrder"
BODY = b'{"chainId":"1","symbol":"USDT","amount":"100","orderNo":"A-1"}'
BODY_HASH = "acf466c707aeecac849e1e4a8b47fd67db196b0aa53ca1f0f335bc907270b331"
SECRET = b"test-secret"
V2_POST = "f46f7498e21709a61f20c1b64b117f9449b5a71480391a822a9257e220468909"
GET_PATH = "/api/v1/payment/contractPayment"
GET_QUERY = "orderNo=A-1"
V2_GET = "f3513925954cbcb2b351df0a1068a7c41ccef37b667f9c5a9ba6a9a908a2cbf9"
PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcQWIm/lXgaj0DhRyK4QOO2SogaOp
aGUv3bZNihf9i9IxRDRHJe9m6ucIsxK4XaFScoVQZavByNqfPmqZw/X6Ig==
-----END PUBLIC KEY-----
"""
V1_POST = "MEYCIQClsNiQRTkct8ogrM33xxN8zHEcEN7i4CkPaK6siSOR+QIhAMQ5c/JMOSsOwC6ZZ0RbI+wYURq7JqGfQ5vfPGi8T8NV"

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def post_string() -> bytes:
    return signing_string(API_KEY, REQUEST_TIME, RECV_WINDOW, "POST", POST_PATH, "", BODY)


def get_string() -> bytes:
    return signing_string(API_KEY, REQUEST_TIME, None, "GET", GET_PATH, GET_QUERY, b"")


def test_body_hash_vector() -> None:
    assert body_sha256_hex(BODY) == BODY_HASH
    assert body_sha256_hex(b"") == EMPTY_SHA256


def test_post_signing_string_is_seven_lines() -> None:
    assert post_string() == (
        b"ak_test_0001\n1696947336603\n30000\nPOST\n/api/v1/payment/createQrOrder\n\n"
        + BODY_HASH.encode()
    )


def test_get_signing_string_has_empty_window_line() -> None:
    assert get_string() == (
        b"ak_test_0001\n1696947336603\n\nGET\n/api/v1/payment/contractPayment\norderNo=A-1\n"
        + EMPTY_SHA256.encode()
    )


def test_method_is_upper_cased() -> None:
    lower = signing_string(API_KEY, REQUEST_TIME, RECV_WINDOW, "post", POST_PATH, "", BODY)
    assert lower == post_string()


def test_v2_post_vector() -> None:
    assert sign_v2(SECRET, post_string()) == V2_POST
    assert verify_v2(SECRET, post_string(), V2_POST)


def test_v2_get_vector() -> None:
    assert sign_v2(SECRET, get_string()) == V2_GET
    assert verify_v2(SECRET, get_string(), V2_GET)


def test_v1_vector() -> None:
    key = load_public_key_pem(PUBLIC_KEY_PEM)
    assert verify_v1(key, post_string(), V1_POST)
    assert not verify_v1(key, get_string(), V1_POST)


def test_v1_vector_in_every_accepted_encoding() -> None:
    key = load_public_key_pem(PUBLIC_KEY_PEM.encode())
    der = base64.b64decode(V1_POST)
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    for encoding in (
        der.hex(),
        der.hex().upper(),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(der).decode(),
    ):
        assert verify_v1(key, post_string(), encoding), encoding


@pytest.mark.parametrize(
    "field",
    ["api_key", "request_time", "recv_window", "method", "path", "query"],
)
def test_line_breaks_in_a_field_are_refused(field: str) -> None:
    parts = {
        "api_key": API_KEY,
        "request_time": REQUEST_TIME,
        "recv_window": RECV_WINDOW,
        "method": "POST",
        "path": POST_PATH,
        "query": "",
    }
    parts[field] += "\nx"
    with pytest.raises(InvalidRequest) as info:
        signing_string(
            parts["api_key"],
            parts["request_time"],
            parts["recv_window"],
            parts["method"],
            parts["path"],
            parts["query"],
            BODY,
        )
    assert info.value.code == "invalid_signing_input"


def test_lone_surrogate_in_path_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        signing_string(API_KEY, REQUEST_TIME, None, "GET", "/a\udcff", "", b"")
