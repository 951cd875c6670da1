"""Verify a webhook from the gateway before acting on it.

Each attempt carries ``BlockATM-Request-Time`` (Unix ms), ``BlockATM-Signature-V2`` (HMAC-SHA256
with your webhook secret, lowercase hex; several comma-separated values while the secret is being
rotated) and ``BlockATM-Signature-V1`` (ECDSA P-256 by the gateway's key, DER base64), both over
the bytes ``<time>.<raw body>``.

The gateway's V1 key signs **every** merchant's webhooks, so a valid V1 signature only proves the
gateway sent the body, not that it is meant for you: another merchant on the same gateway can
create an order with your ``orderNo`` and amount, pay it, and point its webhook at your URL.
The body's ``merchantId`` is what binds it to you, so checking V1 requires ``merchant_id``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from stablegate_client._errors import WebhookVerificationError
from stablegate_client._models import WebhookEvent
from stablegate_client._signing import (
    REQUEST_TIME_HEADER,
    SIGNATURE_V1_HEADER,
    SIGNATURE_V2_HEADER,
    load_p256_public_key,
)

_MAX_HEADER = 4096


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _v2_matches(secrets: Sequence[str], signed: bytes, header: str) -> bool:
    """True when any comma-separated value is the HMAC of ``signed`` with any secret.

    Every pair is compared, in constant time, so the time taken does not tell which one matched.
    """
    values = [v.strip().lower().encode("ascii", "replace") for v in header.split(",")]
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest().encode()
        for value in values:
            ok |= hmac.compare_digest(expected, value)
    return ok


def _v1_matches(keys: Sequence[ec.EllipticCurvePublicKey], signed: bytes, header: str) -> bool:
    try:
        raw = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    # DER as the gateway sends it; raw r||s (64 bytes) tolerated.
    if len(raw) == 64:
        raw = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    for key in keys:
        try:
            key.verify(raw, signed, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            continue
        return True
    return False


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | Sequence[str] | None = None,
    public_key_pem: str | bytes | Sequence[str | bytes] | None = None,
    merchant_id: str | None = None,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> WebhookEvent:
    """Checks a webhook and returns its event; raises :class:`WebhookVerificationError`.

    ``body`` is the raw request body, exactly as received (not re-serialised JSON). ``secret`` is
    your webhook secret (or a list while you rotate it); ``public_key_pem`` the gateway's key (or
    keys) from ``GET /api/v1/public/signing-key``. Every check you configure must pass, and at least
    one must be configured. ``merchant_id`` is your merchant id: the body's ``merchantId`` must
    equal it. It is required with ``public_key_pem``, because the gateway's key signs every
    merchant's webhooks; with ``secret`` alone it is optional (the secret is yours only) but
    recommended. ``BlockATM-Request-Time`` must be within ``tolerance_seconds`` of ``now`` (Unix
    seconds, default the current time), which makes a captured webhook useless later; within
    that window deduplicate on ``event_id``.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret or ())
    pems = (
        [public_key_pem] if isinstance(public_key_pem, str | bytes) else list(public_key_pem or ())
    )
    if not secrets and not pems:
        raise TypeError("configure secret=, public_key_pem= or both")
    if pems and not merchant_id:
        raise TypeError(
            "public_key_pem= needs merchant_id=: the gateway's key signs every merchant's "
            "webhooks, so only the body's merchantId says this one is yours"
        )
    keys = [load_p256_public_key(pem) for pem in pems]

    request_time = _header(headers, REQUEST_TIME_HEADER)
    if request_time is None or not request_time.isascii() or not request_time.isdigit():
        raise WebhookVerificationError(f"missing or malformed {REQUEST_TIME_HEADER}")
    current = time.time() if now is None else now
    if abs(current - int(request_time) / 1000) > tolerance_seconds:
        raise WebhookVerificationError(
            f"{REQUEST_TIME_HEADER} is more than {tolerance_seconds:g} s away from now"
        )
    signed = request_time.encode("ascii") + b"." + body

    if secrets:
        v2 = _header(headers, SIGNATURE_V2_HEADER)
        if v2 is None or len(v2) > _MAX_HEADER or not _v2_matches(secrets, signed, v2):
            raise WebhookVerificationError(f"{SIGNATURE_V2_HEADER} is missing or does not match")
    if keys:
        v1 = _header(headers, SIGNATURE_V1_HEADER)
        if v1 is None or len(v1) > _MAX_HEADER or not _v1_matches(keys, signed, v1):
            raise WebhookVerificationError(f"{SIGNATURE_V1_HEADER} is missing or does not match")

    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        event = WebhookEvent.from_json(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise WebhookVerificationError(f"the signed body is not a webhook event: {exc}") from None
    if merchant_id is not None and event.merchant_id != merchant_id:
        raise WebhookVerificationError(
            "the webhook is not for this merchant (its merchantId is "
            f"{event.merchant_id!r}, expected {merchant_id!r})"
        )
    return event
