"""Webhook signatures, checked by a verifier written here from docs/DESIGN.md §8 alone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from tests.support import PAYOUT, MerchantKeys
from tests.webhooks.webhook_support import (
    LATER_EVENTS,
    Hit,
    Receiver,
    create_orders,
    drive,
    events_by_id,
    make_worker,
    set_merchant_url,
)

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant
from stablegate.webhooks.service import resend, rotate_webhook_secret
from stablegate.webhooks.signing import sign_v1, sign_v2, webhook_body, webhook_headers
from stablegate.webhooks.signing_key import GatewaySigningKey

VECTOR_TIME = "1696947336603"
VECTOR_BODY = b'{"eventId":"evt_1","type":"order.completed"}'
VECTOR_SECRET = "whsec-test"
VECTOR_V2 = "9688931e1d339135a3e848af9ee7ad5c31a8088ce36f760ce8426e00ccf00479"


# --- the independent verifier: what a merchant writes from docs/DESIGN.md §8 -----------------


def verify_v2(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """True when any of the comma-separated V2 values is HMAC-SHA256(secret, time.body)."""
    message = headers["blockatm-request-time"].encode() + b"." + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    values = headers["blockatm-signature-v2"].split(",")
    return any(hmac.compare_digest(expected, value.strip()) for value in values)


def verify_v1(headers: dict[str, str], body: bytes, public_pem: str) -> bool:
    key = load_pem_public_key(public_pem.encode())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    message = headers["blockatm-request-time"].encode() + b"." + body
    try:
        key.verify(
            base64.b64decode(headers["blockatm-signature-v1"]), message, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        return False
    return True


# ---------------------------------------------------------------------------------------------


def test_design_vector_v2() -> None:
    assert sign_v2(VECTOR_SECRET, VECTOR_TIME, VECTOR_BODY) == VECTOR_V2
    headers = {"blockatm-request-time": VECTOR_TIME, "blockatm-signature-v2": VECTOR_V2}
    assert verify_v2(headers, VECTOR_BODY, VECTOR_SECRET)
    assert not verify_v2(headers, VECTOR_BODY + b" ", VECTOR_SECRET)
    assert not verify_v2(headers, VECTOR_BODY, "whsec-other")


def test_vector_body_serialises_to_the_signed_bytes(gateway: GatewayContext) -> None:
    stored = {"eventId": "evt_1", "type": "order.completed"}
    assert webhook_body(stored, merchant_id="mch_1") == (
        b'{"eventId":"evt_1","merchantId":"mch_1","type":"order.completed"}'
    )
    headers = webhook_headers(
        event_id="evt_1",
        time_ms=int(VECTOR_TIME),
        body=VECTOR_BODY,
        secrets=[VECTOR_SECRET],
        signing_key=gateway.signing_key,
    )
    assert headers["BlockATM-Signature-V2"] == VECTOR_V2
    assert headers["BlockATM-Request-Time"] == VECTOR_TIME
    assert headers["Webhook-Id"] == "evt_1"
    assert headers["BlockATM-Key-Id"] == gateway.signing_key.key_id
    assert headers["Content-Type"] == "application/json"
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify_v1(lower, VECTOR_BODY, gateway.signing_key.public_pem)


def test_v1_is_der_base64_and_fresh_each_time(gateway: GatewayContext) -> None:
    key: GatewaySigningKey = gateway.signing_key
    first = sign_v1(key.private_key, VECTOR_TIME, VECTOR_BODY)
    second = sign_v1(key.private_key, VECTOR_TIME, VECTOR_BODY)
    assert base64.b64decode(first)[0] == 0x30  # a DER SEQUENCE
    assert first != second  # ECDSA is randomised; both verify
    for sig in (first, second):
        headers = {"blockatm-request-time": VECTOR_TIME, "blockatm-signature-v1": sig}
        assert verify_v1(headers, VECTOR_BODY, key.public_pem)


def test_the_body_keeps_unicode_as_utf8() -> None:
    body = webhook_body({"eventId": "evt_2", "data": {"description": "咖啡 ☕"}}, merchant_id="m")
    assert body == '{"eventId":"evt_2","merchantId":"m","data":{"description":"咖啡 ☕"}}'.encode()
    with pytest.raises(ValueError, match="Out of range float"):
        webhook_body({"amount": float("nan")}, merchant_id="m")


def test_every_body_names_its_merchant_once() -> None:
    assert webhook_body({"type": "order.created"}, merchant_id="m") == (
        b'{"merchantId":"m","type":"order.created"}'
    )
    stored = {"eventId": "evt_3", "merchantId": "m", "type": "order.created"}
    assert webhook_body(stored, merchant_id="m") == (
        b'{"eventId":"evt_3","merchantId":"m","type":"order.created"}'
    )
    with pytest.raises(ValueError, match="another merchant"):
        webhook_body({**stored, "merchantId": "other"}, merchant_id="m")


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    with Receiver(clock) as server:
        yield server


async def public_signing_key(client: httpx.AsyncClient) -> tuple[str, str]:
    response = await client.get("/api/v1/public/signing-key")
    assert response.status_code == 200
    data = response.json()
    return data["keyId"], data["publicKeyPem"]


async def test_real_deliveries_verify_with_both_signatures(
    gateway: GatewayContext,
    client: httpx.AsyncClient,
    clock: FakeClock,
    merchant: MerchantKeys,
    receiver: Receiver,
) -> None:
    key_id, public_pem = await public_signing_key(client)
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    [[first, second]] = await create_orders(
        gateway, clock, merchant.merchant_id, 1, events_per_order=2
    )
    # The first try of each event fails, so every event is signed at least twice.
    seen: set[str] = set()

    def respond(hit: Hit) -> int:
        if hit.event_id in seen:
            return 200
        seen.add(hit.event_id)
        return 500

    receiver.respond = respond
    async with make_worker(gateway, clock) as worker:
        await drive(gateway, clock, [worker], until_ms=clock.now_ms() + 3_600_000)

    hits = receiver.snapshot()
    assert [h.event_id for h in hits] == [first, first, second, second]
    events = await events_by_id(gateway)
    for hit in hits:
        assert verify_v2(hit.headers, hit.body, merchant.webhook_secret)
        assert verify_v1(hit.headers, hit.body, public_pem)
        assert hit.headers["blockatm-key-id"] == key_id
        assert hit.headers["content-type"] == "application/json"
        assert int(hit.headers["blockatm-request-time"]) == hit.at_ms  # time of THIS attempt
        payload = json.loads(hit.body)
        assert payload == {**events[hit.event_id].payload, "merchantId": merchant.merchant_id}
        assert payload["eventId"] == hit.event_id
        assert list(payload) == ["eventId", "merchantId", "type", "sequence", "createTime", "data"]
        assert payload["data"]["orderId"] == events[hit.event_id].order_id
        for name in ("factory", "payoutAddress", "depositSalt"):
            assert name in payload["data"]
    # Same event, same body and Webhook-Id; a new time and fresh signatures per attempt.
    retry_a, retry_b = hits[0], hits[1]
    assert retry_a.body == retry_b.body
    assert retry_b.at_ms >= retry_a.at_ms + 10_000
    assert retry_a.headers["blockatm-signature-v2"] != retry_b.headers["blockatm-signature-v2"]
    assert retry_a.headers["blockatm-signature-v1"] != retry_b.headers["blockatm-signature-v1"]


async def test_rotation_signs_with_both_secrets_for_24_hours(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    await set_merchant_url(gateway, merchant.merchant_id, receiver.url())
    async with session_scope(gateway.sessions) as session:
        rotated = await rotate_webhook_secret(
            session, gateway.secret_box, clock, merchant_id=merchant.merchant_id
        )
    assert rotated.webhook_secret.startswith("whsec_")
    assert rotated.webhook_secret != merchant.webhook_secret
    assert rotated.previous_valid_until_ms == clock.now_ms() + 24 * 3_600_000
    assert rotated.webhook_secret not in repr(rotated)

    async with make_worker(gateway, clock) as worker:
        await create_orders(gateway, clock, merchant.merchant_id, 1)
        await worker.run_once()
        clock.advance(24 * 3600 - 1)
        await create_orders(gateway, clock, merchant.merchant_id, 1)
        await worker.run_once()
        clock.advance(1)
        await create_orders(gateway, clock, merchant.merchant_id, 1)
        await worker.run_once()

    during, last_moment, after = receiver.snapshot()
    for hit in (during, last_moment):
        new, old = hit.headers["blockatm-signature-v2"].split(",")
        assert verify_v2(
            {**hit.headers, "blockatm-signature-v2": new}, hit.body, rotated.webhook_secret
        )
        assert verify_v2(
            {**hit.headers, "blockatm-signature-v2": old}, hit.body, merchant.webhook_secret
        )
    assert "," not in after.headers["blockatm-signature-v2"]
    assert verify_v2(after.headers, after.body, rotated.webhook_secret)
    assert not verify_v2(after.headers, after.body, merchant.webhook_secret)


async def test_every_body_names_its_merchant_for_every_event_type_and_on_resend(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys, receiver: Receiver
) -> None:
    async with session_scope(gateway.sessions) as session:
        other = await create_merchant(
            session, gateway.secret_box, clock, name="B", payout_address=PAYOUT, chain_ids=[31337]
        )
    secrets = {
        merchant.merchant_id: merchant.webhook_secret,
        other.merchant_id: other.webhook_secret,
    }
    for merchant_id in secrets:
        await set_merchant_url(gateway, merchant_id, receiver.url(merchant_id))
    orders = {
        merchant_id: await create_orders(gateway, clock, merchant_id, 1, events_per_order=5)
        for merchant_id in secrets
    }
    async with make_worker(gateway, clock) as worker:
        await drive(gateway, clock, [worker], until_ms=clock.now_ms())
        for merchant_id, [ids] in orders.items():  # a resent event is built the same way
            async with session_scope(gateway.sessions) as session:
                await resend(
                    session, clock, merchant_id=merchant_id, event_id=ids[-1], actor="test"
                )
        await drive(gateway, clock, [worker], until_ms=clock.now_ms())

    hits = receiver.snapshot()
    assert len(hits) == 12
    events = await events_by_id(gateway)
    for hit in hits:
        merchant_id = hit.path.strip("/")
        body = json.loads(hit.body)
        assert body["merchantId"] == merchant_id == events[hit.event_id].merchant_id
        assert verify_v2(hit.headers, hit.body, secrets[merchant_id])
    assert {json.loads(h.body)["type"] for h in hits} == {"order.created", *LATER_EVENTS}
