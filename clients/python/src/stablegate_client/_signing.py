"""Request signatures exactly as the gateway checks them.

The signing string is seven lines joined by ``\\n``, UTF-8::

    <BlockATM-API-Key>
    <BlockATM-Request-Time>
    <receive window header value as sent, or empty>
    <HTTP method, upper case>
    <path as sent, without query>
    <raw query string as sent, without '?', or empty>
    <lowercase hex SHA-256 of the raw body bytes (of b"" when there is no body)>

V1 is ECDSA P-256 / SHA-256 over it with the merchant's private key (DER, base64); V2 is
HMAC-SHA256 with the API secret (lowercase hex).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

API_KEY_HEADER: Final = "BlockATM-API-Key"
REQUEST_TIME_HEADER: Final = "BlockATM-Request-Time"
# The gateway also reads BlockATM-Rec_Window, but proxies such as nginx drop names with "_".
RECV_WINDOW_HEADER: Final = "BlockATM-Rec-Window"
SIGNATURE_V1_HEADER: Final = "BlockATM-Signature-V1"
SIGNATURE_V2_HEADER: Final = "BlockATM-Signature-V2"


def signing_string(
    api_key: str,
    request_time: str,
    recv_window: str | None,
    method: str,
    path: str,
    query: str,
    body: bytes,
) -> bytes:
    """The bytes V1 and V2 sign. ``recv_window`` None (no header) gives an empty line."""
    fields = (api_key, request_time, recv_window or "", method.upper(), path, query)
    if any("\n" in f or "\r" in f for f in fields):
        raise ValueError("a signed field contains a line break")
    return "\n".join((*fields, hashlib.sha256(body).hexdigest())).encode("utf-8")


def sign_v1(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> str:
    """``BlockATM-Signature-V1``: ECDSA P-256 / SHA-256, DER, base64."""
    return base64.b64encode(private_key.sign(message, ec.ECDSA(hashes.SHA256()))).decode("ascii")


def sign_v2(secret: str | bytes, message: bytes) -> str:
    """``BlockATM-Signature-V2``: HMAC-SHA256, lowercase hex."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def load_p256_private_key(pem: str | bytes) -> ec.EllipticCurvePrivateKey:
    """The merchant's P-256 private key from PEM (PKCS#8 or SEC1, unencrypted)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the merchant key must be an ECDSA P-256 (secp256r1) private key")
    return key


def load_p256_public_key(pem: str | bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from PEM (SubjectPublicKeyInfo)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an ECDSA P-256 (secp256r1) public key")
    return key


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new P-256 key pair as (private PEM, public PEM). Make one once; register the public."""
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem
