"""verify_webhook: time window, V2 with rotated secrets, V1 with the gateway's key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from stablegate_client import OrderStatus, WebhookVerificationError, verify_webhook

# docs/DESIGN.md §8 vector, verbatim.
VECTOR_TIME = "1696947336603"
VECTOR_BODY = b'{"eventId":"evt_1","type":"order.completed"}'
VECTOR_SECRET = "whsec-test"
VECTOR_V2 = "9688931e1d339135a3e848af9ee7ad5c31a8088ce36f760ce8426e00ccf00479"
VECTOR_NOW = int(VECTOR_TIME) / 1000

GATEWAY_KEY = ec.generate_private_key(ec.SECP256R1())
GATEWAY_PEM = GATEWAY_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def v2(secret: str, time_ms: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{time_ms}.".encode() + body, hashlib.sha256).hexdigest()


def v1(time_ms: str, body: bytes, key: ec.EllipticCurvePrivateKey = GATEWAY_KEY) -> str:
    signature = key.sign(f"{time_ms}.".encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def test_design_vector() -> None:
    assert v2(VECTOR_SECRET, VECTOR_TIME, VECTOR_BODY) == VECTOR_V2
    headers = {"BlockATM-Request-Time": VECTOR_TIME, "BlockATM-Signature-V2": VECTOR_V2}
    event = verify_webhook(headers, VECTOR_BODY, secret=VECTOR_SECRET, now=VECTOR_NOW)
    assert (event.event_id, event.type, event.order) == ("evt_1", "order.completed", None)


def test_header_names_are_case_insensitive() -> None:
    headers = {"blockatm-request-time": VECTOR_TIME, "BLOCKATM-SIGNATURE-V2": VECTOR_V2}
    verify_webhook(headers, VECTOR_BODY, secret=VECTOR_SECRET, now=VECTOR_NOW)


def _headers(body: bytes, time_ms: str = VECTOR_TIME) -> dict[str, str]:
    return {
        "BlockATM-Request-Time": time_ms,
        "BlockATM-Signature-V2": v2(VECTOR_SECRET, time_ms, body),
        "BlockATM-Signature-V1": v1(time_ms, body),
    }


# A body as the gateway sends it: it names the merchant it is for.
MERCHANT = "mch_shop_b"
BODY = b'{"eventId":"evt_1","merchantId":"mch_shop_b","type":"order.completed"}'


def test_a_changed_body_is_rejected() -> None:
    headers = _headers(BODY)
    changed = BODY.replace(b"completed", b"cancelled")
    with pytest.raises(WebhookVerificationError, match="V2"):
        verify_webhook(headers, changed, secret=VECTOR_SECRET, now=VECTOR_NOW)
    with pytest.raises(WebhookVerificationError, match="V1"):
        verify_webhook(
            headers, changed, public_key_pem=GATEWAY_PEM, merchant_id=MERCHANT, now=VECTOR_NOW
        )


def test_a_changed_time_is_rejected() -> None:
    headers = _headers(BODY)
    headers["BlockATM-Request-Time"] = str(int(VECTOR_TIME) + 1)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, BODY, secret=VECTOR_SECRET, now=VECTOR_NOW)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(
            headers, BODY, public_key_pem=GATEWAY_PEM, merchant_id=MERCHANT, now=VECTOR_NOW
        )


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_a_time_outside_the_tolerance_is_rejected(offset: float) -> None:
    headers = _headers(VECTOR_BODY)
    with pytest.raises(WebhookVerificationError, match="away from now"):
        verify_webhook(headers, VECTOR_BODY, secret=VECTOR_SECRET, now=VECTOR_NOW + offset)


@pytest.mark.parametrize("offset", [-299, 0, 299])
def test_a_time_inside_the_tolerance_is_accepted(offset: float) -> None:
    verify_webhook(
        _headers(VECTOR_BODY), VECTOR_BODY, secret=VECTOR_SECRET, now=VECTOR_NOW + offset
    )


def test_both_rotated_secrets_are_accepted() -> None:
    old, new = "whsec-old", "whsec-new"
    # During rotation the gateway signs with both: two comma-separated values.
    header = f"{v2(new, VECTOR_TIME, VECTOR_BODY)},{v2(old, VECTOR_TIME, VECTOR_BODY)}"
    headers = {"BlockATM-Request-Time": VECTOR_TIME, "BlockATM-Signature-V2": header}
    for secret in (old, new, [old, new], [new, "whsec-other"]):
        verify_webhook(headers, VECTOR_BODY, secret=secret, now=VECTOR_NOW)
    # A receiver that already switched accepts the gateway's single new signature, and a
    # receiver holding both secrets accepts either single signature.
    for signer in (old, new):
        single = {
            "BlockATM-Request-Time": VECTOR_TIME,
            "BlockATM-Signature-V2": v2(signer, VECTOR_TIME, VECTOR_BODY),
        }
        verify_webhook(single, VECTOR_BODY, secret=[old, new], now=VECTOR_NOW)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, VECTOR_BODY, secret="whsec-other", now=VECTOR_NOW)


def test_v1_with_the_gateways_key() -> None:
    headers = _headers(BODY)
    event = verify_webhook(
        headers, BODY, public_key_pem=GATEWAY_PEM, merchant_id=MERCHANT, now=VECTOR_NOW
    )
    assert (event.event_id, event.merchant_id) == ("evt_1", MERCHANT)
    other = ec.generate_private_key(ec.SECP256R1())
    forged = {**headers, "BlockATM-Signature-V1": v1(VECTOR_TIME, BODY, other)}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(
            forged, BODY, public_key_pem=GATEWAY_PEM, merchant_id=MERCHANT, now=VECTOR_NOW
        )
    # Either of two gateway keys (the gateway rotated its key).
    other_pem = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verify_webhook(
        forged, BODY, public_key_pem=[GATEWAY_PEM, other_pem], merchant_id=MERCHANT, now=VECTOR_NOW
    )


@pytest.mark.parametrize("merchant_id", [None, ""])
def test_v1_without_the_merchant_id_is_a_programming_error(merchant_id: str | None) -> None:
    # The gateway's key signs every merchant's webhooks: V1 alone cannot say "this is yours".
    with pytest.raises(TypeError, match="merchant_id"):
        verify_webhook(
            _headers(BODY),
            BODY,
            secret=VECTOR_SECRET,
            public_key_pem=GATEWAY_PEM,
            merchant_id=merchant_id,
            now=VECTOR_NOW,
        )


def test_another_merchants_genuine_webhook_is_rejected() -> None:
    """Merchant A's webhook, genuinely signed by the gateway, delivered to B's receiver."""
    body_a = b'{"eventId":"evt_9","merchantId":"mch_shop_a","type":"order.completed"}'
    headers = _headers(body_a)
    with pytest.raises(WebhookVerificationError, match="not for this merchant"):
        verify_webhook(
            headers, body_a, public_key_pem=GATEWAY_PEM, merchant_id=MERCHANT, now=VECTOR_NOW
        )
    # The same check applies with V2 when merchant_id is given.
    with pytest.raises(WebhookVerificationError, match="not for this merchant"):
        verify_webhook(headers, body_a, secret=VECTOR_SECRET, merchant_id=MERCHANT, now=VECTOR_NOW)
    # A's own receiver accepts it.
    event = verify_webhook(
        headers, body_a, public_key_pem=GATEWAY_PEM, merchant_id="mch_shop_a", now=VECTOR_NOW
    )
    assert event.merchant_id == "mch_shop_a"


@pytest.mark.parametrize(
    "body",
    [
        VECTOR_BODY,  # no merchantId: an older gateway, or a body not made for anyone
        b'{"eventId":"evt_1","merchantId":null,"type":"order.completed"}',
        b'{"eventId":"evt_1","merchantId":["mch_shop_b"],"type":"order.completed"}',
        b'{"eventId":"evt_1","merchantId":"MCH_SHOP_B","type":"order.completed"}',
    ],
)
def test_a_body_that_does_not_name_the_merchant_is_rejected(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError, match="not for this merchant"):
        verify_webhook(
            _headers(body), body, public_key_pem=GATEWAY_PEM, merchant_id=MERCHANT, now=VECTOR_NOW
        )


def test_every_configured_check_must_pass() -> None:
    headers = _headers(BODY)
    both = {"public_key_pem": GATEWAY_PEM, "merchant_id": MERCHANT, "now": VECTOR_NOW}
    verify_webhook(headers, BODY, secret=VECTOR_SECRET, **both)
    with pytest.raises(WebhookVerificationError, match="V2"):
        verify_webhook(headers, BODY, secret="wrong", **both)
    with pytest.raises(WebhookVerificationError, match="not for this merchant"):
        verify_webhook(headers, BODY, secret=VECTOR_SECRET, **{**both, "merchant_id": "mch_x"})
    del headers["BlockATM-Signature-V1"]
    with pytest.raises(WebhookVerificationError, match="V1"):
        verify_webhook(headers, BODY, secret=VECTOR_SECRET, **both)


def test_nothing_configured_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        verify_webhook(_headers(VECTOR_BODY), VECTOR_BODY, now=VECTOR_NOW)


@pytest.mark.parametrize("time_header", [None, "", "abc", "1e12", "١٢٣"])
def test_missing_or_malformed_time_is_rejected(time_header: str | None) -> None:
    headers = {"BlockATM-Signature-V2": VECTOR_V2}
    if time_header is not None:
        headers["BlockATM-Request-Time"] = time_header
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, VECTOR_BODY, secret=VECTOR_SECRET, now=VECTOR_NOW)


def test_the_event_carries_the_order_typed() -> None:
    order = {
        "orderId": "ord_1",
        "orderNo": "A-1",
        "custNo": None,
        "status": "completed",
        "exceptions": ["overpaid"],
        "chainId": "56",
        "network": "bsc",
        "symbol": "USDT",
        "tokenAddress": "0x55d398326f99059fF775485246999027B3197955",
        "decimals": 18,
        "amount": "25.000000000000000001",
        "paidAmount": "26",
        "pendingAmount": "0",
        "toAddress": "0x0000000000000000000000000000000000000001",
        "payoutAddress": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "factory": "0x0000000000000000000000000000000000000002",
        "depositSalt": "0x" + "ab" * 32,
        "cashierUrl": "u",
        "paymentUri": "p",
        "qrCode": "q",
        "expireTime": 2,
        "createTime": 1,
        "completeTime": 3,
        "txId": "0x" + "cd" * 32,
        "confirmations": 12,
        "futureField": True,
    }
    body = json.dumps(
        {
            "eventId": "evt_9",
            "type": "order.completed",
            "sequence": 4,
            "createTime": 5,
            "data": order,
        }
    ).encode()
    event = verify_webhook(_headers(body), body, secret=VECTOR_SECRET, now=VECTOR_NOW)
    assert event.sequence == 4 and event.order is not None
    assert event.order.status == OrderStatus.COMPLETED
    assert event.order.amount == Decimal("25.000000000000000001")
    assert event.order.chain_id == 56 and event.order.exceptions == ("overpaid",)
    assert event.order.raw["futureField"] is True


def test_a_signed_body_that_is_not_an_event_is_rejected() -> None:
    body = b"[1, 2]"
    with pytest.raises(WebhookVerificationError, match="not a webhook event"):
        verify_webhook(_headers(body), body, secret=VECTOR_SECRET, now=VECTOR_NOW)
