"""V1 (ECDSA P-256 / SHA-256, merchant's key pair) and V2 (HMAC-SHA256, API secret) signatures.

Verification never raises on attacker-controlled input: a header that does not decode, has the
wrong length or does not verify is simply ``False``. Which encoding a V1 signature arrives in does
not matter for replay protection, because the replay key is derived from the signing string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from stablegate.errors import InvalidRequest

# A DER P-256 signature is at most 72 bytes (144 hex chars); leave room, refuse anything huge.
_MAX_V1_HEADER = 256
_MAX_PEM = 4096
_RAW_SIGNATURE_LEN = 64
_HEX = re.compile(r"[0-9A-Fa-f]+")
_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def _is_p256(public_key: object) -> bool:
    return isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    )


def load_public_key_pem(pem: bytes | str) -> ec.EllipticCurvePublicKey:
    """Parse a merchant's PEM public key; only P-256 is accepted.

    Raises :class:`InvalidRequest` with code ``invalid_public_key`` otherwise.
    """
    try:
        data = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
        if len(data) > _MAX_PEM:
            raise ValueError("too long")
        key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeError):
        raise InvalidRequest("not a PEM-encoded public key", code="invalid_public_key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not _is_p256(key):
        raise InvalidRequest("the public key must be ECDSA P-256", code="invalid_public_key")
    return key


def _b64decode(value: str) -> bytes | None:
    if not _B64.fullmatch(value):
        return None
    unpadded = value.rstrip("=")
    if len(unpadded) % 4 == 1:
        return None
    padded = unpadded + "=" * (-len(unpadded) % 4)
    alphabet = b"-_" if ("-" in padded or "_" in padded) else b"+/"
    if alphabet == b"-_" and ("+" in padded or "/" in padded):
        return None
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        return None


def _der_candidates(header_value: str) -> list[bytes]:
    """Every DER signature the header could denote (hex DER, base64 DER, base64 raw r||s)."""
    candidates: list[bytes] = []
    if len(header_value) % 2 == 0 and _HEX.fullmatch(header_value):
        candidates.append(bytes.fromhex(header_value))
    decoded = _b64decode(header_value)
    if decoded is not None:
        if len(decoded) == _RAW_SIGNATURE_LEN:
            r = int.from_bytes(decoded[:32], "big")
            s = int.from_bytes(decoded[32:], "big")
            candidates.append(encode_dss_signature(r, s))
        else:
            candidates.append(decoded)
    return candidates


def verify_v1(public_key: ec.EllipticCurvePublicKey, message: bytes, header_value: str) -> bool:
    """True when ``header_value`` is a valid ECDSA P-256/SHA-256 signature of ``message``.

    Accepted encodings: DER in base64, DER in hex, raw 64-byte ``r||s`` in base64 (standard or
    URL-safe alphabet, padding optional). Anything else is ``False``.
    """
    if not _is_p256(public_key):
        return False
    value = header_value.strip()
    if not value or len(value) > _MAX_V1_HEADER or not value.isascii():
        return False
    for der in _der_candidates(value):
        try:
            public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError, TypeError, OverflowError):
            continue
        return True
    return False


def sign_v2(secret: bytes, message: bytes) -> str:
    """HMAC-SHA256 of ``message`` with ``secret``, lowercase hex."""
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_v2(secret: bytes, message: bytes, header_value: str) -> bool:
    """Constant-time check of a V2 header (hex digits compared case-insensitively)."""
    expected = sign_v2(secret, message).encode("ascii")
    value = header_value.strip()
    if not value.isascii():
        # Still do the comparison so the time taken does not depend on the header's content.
        hmac.compare_digest(expected, expected)
        return False
    return hmac.compare_digest(expected, value.lower().encode("ascii"))
