"""The SDK signs exactly what the gateway verifies: docs/DESIGN.md §2's vectors, and requests
built by the SDK passed through the gateway's own ``authenticate``."""

from __future__ import annotations

import base64
import hashlib
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from stablegate_client import (
    Client,
    StablegateError,
    generate_key_pair,
    sign_v1,
    sign_v2,
    signing_string,
)
from stablegate_client._signing import load_p256_private_key, load_p256_public_key

from stablegate.auth import signing as server_signing
from stablegate.auth.replay import MemoryReplayStore
from stablegate.auth.verify import KeyCredentials, SignedRequest, authenticate
from stablegate.clock import FakeClock

# docs/DESIGN.md §2 test vectors, verbatim.
API_KEY = "ak_test_0001"
REQUEST_TIME = "1696947336603"
POST_PATH = "/api/v1/payment/createQrOrder"
BODY = b'{"chainId":"1","symbol":"USDT","amount":"100","orderNo":"A-1"}'
BODY_SHA256 = "acf466c707aeecac849e1e4a8b47fd67db196b0aa53ca1f0f335bc907270b331"
SECRET = "test-secret"
V2_POST = "f46f7498e21709a61f20c1b64b117f9449b5a71480391a822a9257e220468909"
V2_GET = "f3513925954cbcb2b351df0a1068a7c41ccef37b667f9c5a9ba6a9a908a2cbf9"
PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcQWIm/lXgaj0DhRyK4QOO2SogaOp
aGUv3bZNihf9i9IxRDRHJe9m6ucIsxK4XaFScoVQZavByNqfPmqZw/X6Ig==
-----END PUBLIC KEY-----
"""
V1_POST = "MEYCIQClsNiQRTkct8ogrM33xxN8zHEcEN7i4CkPaK6siSOR+QIhAMQ5c/JMOSsOwC6ZZ0RbI+wYURq7JqGfQ5vfPGi8T8NV"

NOW_MS = 1_767_225_600_000


def test_design_vector_v2_post() -> None:
    message = signing_string(API_KEY, REQUEST_TIME, "30000", "POST", POST_PATH, "", BODY)
    assert message.decode().splitlines()[-1] == BODY_SHA256
    assert hashlib.sha256(BODY).hexdigest() == BODY_SHA256
    assert sign_v2(SECRET, message) == V2_POST


def test_design_vector_v2_get_without_window() -> None:
    message = signing_string(
        API_KEY, REQUEST_TIME, None, "GET", "/api/v1/payment/contractPayment", "orderNo=A-1", b""
    )
    assert sign_v2(SECRET, message) == V2_GET


def test_design_vector_v1_verifies_against_the_sdks_signing_string() -> None:
    message = signing_string(API_KEY, REQUEST_TIME, "30000", "POST", POST_PATH, "", BODY)
    load_p256_public_key(PUBLIC_KEY_PEM).verify(
        base64.b64decode(V1_POST), message, ec.ECDSA(hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("window", "method", "path", "query", "body"),
    [
        ("30000", "post", "/a", "", b"{}"),
        (None, "GET", "/api/v1/payment/contractPayment", "orderNo=%C3%A9+x&limit=5", b""),
        ("60000", "POST", "/p%2Fq", "a=1", '{"é":"ü"}'.encode()),
    ],
)
def test_signing_string_is_the_servers(
    window: str | None, method: str, path: str, query: str, body: bytes
) -> None:
    ours = signing_string(API_KEY, REQUEST_TIME, window, method, path, query, body)
    theirs = server_signing.signing_string(API_KEY, REQUEST_TIME, window, method, path, query, body)
    assert ours == theirs


def test_line_breaks_in_signed_fields_are_refused() -> None:
    with pytest.raises(ValueError):
        signing_string(API_KEY, REQUEST_TIME, None, "GET", "/a\n", "", b"")


def test_sign_v1_is_der_base64_that_verifies() -> None:
    private_pem, public_pem = generate_key_pair()
    message = b"hello"
    signature = base64.b64decode(sign_v1(load_p256_private_key(private_pem), message))
    assert signature[0] == 0x30  # DER SEQUENCE
    load_p256_public_key(public_pem).verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_non_p256_keys_are_refused() -> None:
    from cryptography.hazmat.primitives import serialization

    k1 = ec.generate_private_key(ec.SECP256K1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="P-256"):
        Client("http://gw", API_KEY, private_key_pem=k1)


# Requests the SDK builds, captured and handed to the gateway's authenticate().


ORDER: dict[str, Any] = {
    "orderId": "ord_1",
    "orderNo": "A-1",
    "custNo": None,
    "status": "pending",
    "exceptions": [],
    "chainId": "31337",
    "network": "anvil",
    "symbol": "USDT",
    "tokenAddress": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "decimals": 6,
    "amount": "12.5",
    "paidAmount": "0",
    "pendingAmount": "0",
    "toAddress": "0x0000000000000000000000000000000000000001",
    "payoutAddress": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "factory": None,
    "depositSalt": None,
    "cashierUrl": "https://pay.example.com/cashier/ord_1",
    "paymentUri": "ethereum:...",
    "qrCode": "https://pay.example.com/api/v1/public/orders/ord_1/qr.png",
    "expireTime": 1,
    "createTime": 0,
    "completeTime": None,
    "txId": None,
    "confirmations": 0,
}


class Capture:
    """Answers like the gateway would: a page for a list, an order otherwise."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET" and b"order" not in request.url.query:
            return httpx.Response(200, json={"items": [ORDER], "nextCursor": None})
        return httpx.Response(200, json=ORDER)


def _client(capture: Capture, clock: FakeClock, **credentials: str) -> Client:
    return Client(
        "http://gw.example",
        API_KEY,
        http_client=httpx.Client(transport=httpx.MockTransport(capture)),
        now_ms=clock.now_ms,
        **credentials,  # type: ignore[arg-type]
    )


async def _authenticate(
    request: httpx.Request, credentials: KeyCredentials, clock: FakeClock
) -> None:
    path, _, query = request.url.raw_path.decode().partition("?")
    signed = SignedRequest(
        method=request.method,
        path=path,
        query=query,
        headers=dict(request.headers),
        body=request.content,
    )

    async def lookup(api_key: str) -> KeyCredentials | None:
        return credentials if api_key == API_KEY else None

    result = await authenticate(
        signed, lookup, MemoryReplayStore(clock), clock, require_signature=True
    )
    assert result.signed


def _credentials(
    *, secret: bytes | None = None, public_key: ec.EllipticCurvePublicKey | None = None
) -> KeyCredentials:
    return KeyCredentials(
        api_key_id="key_1",
        merchant_id="m_1",
        hmac_secret=secret,
        public_keys=() if public_key is None else (public_key,),
        v2_enabled=False,
        signed_reads=True,
    )


async def test_v2_requests_built_by_the_sdk_pass_the_gateways_check() -> None:
    clock, capture = FakeClock(NOW_MS), Capture()
    with _client(capture, clock, secret_key="s3cret") as client:
        client.list_orders(status="pending", limit=5, cursor="c/ü &x=1")
        client.get_order(order_no="shop order #1/é")
        assert client.cancel_order(order_id="ord_1").amount == Decimal("12.5")
    assert [r.method for r in capture.requests] == ["GET", "GET", "POST"]
    for request in capture.requests:
        assert "BlockATM-Signature-V2" in request.headers
        assert "BlockATM-Signature-V1" not in request.headers
        await _authenticate(request, _credentials(secret=b"s3cret"), clock)


async def test_v1_requests_built_by_the_sdk_pass_the_gateways_check() -> None:
    private_pem, public_pem = generate_key_pair()
    clock, capture = FakeClock(NOW_MS), Capture()
    with _client(capture, clock, private_key_pem=private_pem.decode()) as client:
        client.create_order(31337, "USDT", "12.5", metadata={"cart": ["é", 1]})
        client.list_orders()
    for request in capture.requests:
        assert "BlockATM-Signature-V2" not in request.headers
        await _authenticate(
            request, _credentials(public_key=load_p256_public_key(public_pem)), clock
        )


def test_create_sends_one_serialisation_with_an_order_no_and_signs_each_attempt() -> None:
    clock, capture = FakeClock(NOW_MS), Capture()
    attempts = iter([503, 503, 200])

    def flaky(request: httpx.Request) -> httpx.Response:
        capture.requests.append(request)
        status = next(attempts)
        if status != 200:
            return httpx.Response(status, json={"error": {"code": "x", "message": "busy"}})
        return httpx.Response(200, json={"items": [], "nextCursor": None})

    client = Client(
        "http://gw.example",
        API_KEY,
        secret_key="s",
        http_client=httpx.Client(transport=httpx.MockTransport(flaky)),
        now_ms=clock.now_ms,
        sleep=lambda _s: None,
    )
    with pytest.raises(StablegateError, match="invalid_response"):  # the mock's answer
        client.create_order("31337", "USDT", 7)
    bodies = {r.content for r in capture.requests}
    assert len(capture.requests) == 3 and len(bodies) == 1
    body = json.loads(bodies.pop())
    assert body["orderNo"].startswith("sg-") and body["amount"] == "7"
    times = [r.headers["BlockATM-Request-Time"] for r in capture.requests]
    signatures = {r.headers["BlockATM-Signature-V2"] for r in capture.requests}
    assert len(set(times)) == 3 and len(signatures) == 3  # fresh for every attempt
    assert all(r.headers["BlockATM-Rec-Window"] == "30000" for r in capture.requests)


def test_create_with_a_currency_sends_the_price_and_its_currency() -> None:
    clock, capture = FakeClock(NOW_MS), Capture()
    with _client(capture, clock, secret_key="s") as client:
        client.create_order(31337, "USDT", Decimal("72.00"), currency="CNY", order_no="A-2")
        client.create_order(31337, "USDT", "10", order_no="A-3")
    priced, plain = (json.loads(r.content) for r in capture.requests)
    assert priced == {
        "chainId": "31337",
        "symbol": "USDT",
        "amount": "72.00",
        "orderNo": "A-2",
        "currency": "CNY",
    }
    assert "currency" not in plain  # a token amount, as before
