"""Webhook body and signatures (docs/DESIGN.md §8).

Both signatures cover the same bytes, ``<BlockATM-Request-Time>.<raw body>``:

- ``BlockATM-Signature-V2``: HMAC-SHA256 with the merchant's webhook secret, lowercase hex. For
  24 hours after a rotation it carries two values, comma-separated, the new secret's first.
- ``BlockATM-Signature-V1``: ECDSA P-256 / SHA-256 by the gateway's key, DER in base64; the
  public key is served at ``GET /api/v1/public/signing-key`` and named by ``BlockATM-Key-Id``.

Every attempt is signed afresh with its own time; ``Webhook-Id`` (the eventId) stays the same
across attempts so receivers can drop duplicates.

The V1 key is one key for every merchant, so a V1 signature alone says "the gateway sent this",
not "this is for you": merchant A's genuine ``order.completed`` for an order numbered like one of
B's would pass B's V1 check. Every body therefore names its merchant (``merchantId``, taken from
the event row when the body is built, so events stored before the field existed carry it too),
and receivers compare it with their own id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from stablegate import __version__
from stablegate.webhooks.signing_key import GatewaySigningKey

TIME_HEADER = "BlockATM-Request-Time"
V1_HEADER = "BlockATM-Signature-V1"
V2_HEADER = "BlockATM-Signature-V2"
KEY_ID_HEADER = "BlockATM-Key-Id"
WEBHOOK_ID_HEADER = "Webhook-Id"
USER_AGENT = f"stablegate-webhooks/{__version__}"


def webhook_body(payload: Mapping[str, Any], *, merchant_id: str) -> bytes:
    """The exact bytes that are signed and sent: compact UTF-8 JSON in the stored key order,
    with ``merchantId`` right after ``eventId`` (first when there is no ``eventId``)."""
    if payload.get("merchantId", merchant_id) != merchant_id:
        raise ValueError("the stored event names another merchant")
    body: dict[str, Any] = {} if "eventId" in payload else {"merchantId": merchant_id}
    for key, value in payload.items():
        if key != "merchantId":
            body[key] = value
        if key == "eventId":
            body["merchantId"] = merchant_id
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def signed_bytes(request_time: str, body: bytes) -> bytes:
    return request_time.encode("ascii") + b"." + body


def sign_v2(secret: str, request_time: str, body: bytes) -> str:
    return hmac.new(
        secret.encode("utf-8"), signed_bytes(request_time, body), hashlib.sha256
    ).hexdigest()


def sign_v1(private_key: ec.EllipticCurvePrivateKey, request_time: str, body: bytes) -> str:
    der = private_key.sign(signed_bytes(request_time, body), ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(der).decode("ascii")


def webhook_headers(
    *,
    event_id: str,
    time_ms: int,
    body: bytes,
    secrets: Sequence[str],
    signing_key: GatewaySigningKey,
) -> dict[str, str]:
    """Headers of one attempt. ``secrets``: the current webhook secret first, then the previous
    one while it is still honoured after a rotation."""
    if not secrets:
        raise ValueError("at least one webhook secret is needed")
    request_time = str(time_ms)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIME_HEADER: request_time,
        V2_HEADER: ",".join(sign_v2(secret, request_time, body) for secret in secrets),
        V1_HEADER: sign_v1(signing_key.private_key, request_time, body),
        KEY_ID_HEADER: signing_key.key_id,
        WEBHOOK_ID_HEADER: event_id,
    }
