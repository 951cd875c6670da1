"""authenticate(): the whole request check, with the docs/DESIGN.md §2 vectors and a fake clock."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from stablegate.auth.replay import MemoryReplayStore
from stablegate.auth.signatures import load_public_key_pem, sign_v2
from stablegate.auth.signing import signing_string
from stablegate.auth.verify import AuthResult, KeyCredentials, SignedRequest, authenticate
from stablegate.clock import FakeClock
from stablegate.errors import GatewayError

# docs/DESIGN.md §2 test vectors, verbatim.
API_KEY = "ak_test_0001"
REQUEST_TIME = "1696947336603"
POST_PATH = "/api/v1/payment/createQrOrder"
BODY = b'{"chainId":"1","symbol":"USDT","amount":"100","orderNo":"A-1"}'
SECRET = b"test-secret"
V2_POST = "f46f7498e21709a61f20c1b64b117f9449b5a71480391a822a9257e220468909"
V2_GET = "f3513925954cbcb2b351df0a1068a7c41ccef37b667f9c5a9ba6a9a908a2cbf9"
PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcQWIm/lXgaj0DhRyK4QOO2SogaOp
aGUv3bZNihf9i9IxRDRHJe9m6ucIsxK4XaFScoVQZavByNqfPmqZw/X6Ig==
-----END PUBLIC KEY-----
"""
V1_POST = "MEYCIQClsNiQRTkct8ogrM33xxN8zHEcEN7i4CkPaK6siSOR+QIhAMQ5c/JMOSsOwC6ZZ0RbI+wYURq7JqGfQ5vfPGi8T8NV"
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

NOW = int(REQUEST_TIME)


def creds(
    *,
    public_keys: tuple[ec.EllipticCurvePublicKey, ...] = (),
    v2_enabled: bool = False,
    signed_reads: bool | None = None,
    secret: bytes | None = SECRET,
) -> KeyCredentials:
    return KeyCredentials(
        api_key_id="key_1",
        merchant_id="m_1",
        hmac_secret=secret,
        public_keys=public_keys,
        v2_enabled=v2_enabled,
        signed_reads=signed_reads,
    )


class Lookup:
    def __init__(self, credentials: KeyCredentials | None, api_key: str = API_KEY) -> None:
        self.credentials = credentials
        self.api_key = api_key
        self.calls = 0

    async def __call__(self, api_key: str) -> KeyCredentials | None:
        self.calls += 1
        return self.credentials if api_key == self.api_key else None


def post_headers(**extra: str) -> dict[str, str]:
    return {
        "BlockATM-API-Key": API_KEY,
        "BlockATM-Request-Time": REQUEST_TIME,
        "BlockATM-Rec_Window": "30000",
        **extra,
    }


def post(headers: dict[str, str], body: bytes = BODY, path: str = POST_PATH) -> SignedRequest:
    return SignedRequest(method="POST", path=path, query="", headers=headers, body=body)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ms=NOW)


@pytest.fixture
def replay(clock: FakeClock) -> MemoryReplayStore:
    return MemoryReplayStore(clock)


Run = Callable[..., Awaitable[AuthResult]]


@pytest.fixture
def run(clock: FakeClock, replay: MemoryReplayStore) -> Run:
    async def _run(
        req: SignedRequest,
        lookup: Lookup | None = None,
        *,
        require_signature: bool = True,
        store: MemoryReplayStore | None = None,
    ) -> AuthResult:
        return await authenticate(
            req,
            lookup or Lookup(creds()),
            store if store is not None else replay,
            clock,
            require_signature=require_signature,
        )

    return _run


async def fails(coro: Awaitable[object], status: int, code: str) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        await coro
    assert (info.value.status, info.value.code) == (status, code), info.value.message
    return info.value


# --- the vectors, end to end -------------------------------------------------------------


async def test_v2_post_vector_authenticates(run: Run) -> None:
    result = await run(post(post_headers(**{"BlockATM-Signature-V2": V2_POST})))
    assert result.signed and result.api_key == API_KEY
    assert result.credentials.merchant_id == "m_1"


async def test_v2_get_vector_authenticates(run: Run) -> None:
    req = SignedRequest(
        method="GET",
        path="/api/v1/payment/contractPayment",
        query="orderNo=A-1",
        headers={
            "BlockATM-API-Key": API_KEY,
            "BlockATM-Request-Time": REQUEST_TIME,
            "BlockATM-Signature-V2": V2_GET,
        },
        body=b"",
    )
    assert (await run(req, require_signature=False)).signed


async def test_v1_post_vector_authenticates(run: Run) -> None:
    key = load_public_key_pem(PUBLIC_KEY_PEM)
    result = await run(
        post(post_headers(**{"BlockATM-Signature-V1": V1_POST})), Lookup(creds(public_keys=(key,)))
    )
    assert result.signed


# --- anything changed breaks the signature ------------------------------------------------


async def test_wrong_secret(run: Run) -> None:
    await fails(
        run(post(post_headers(**{"BlockATM-Signature-V2": V2_POST})), Lookup(creds(secret=b"x"))),
        401,
        "invalid_signature",
    )


async def test_v1_wrong_public_key(run: Run) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    await fails(
        run(
            post(post_headers(**{"BlockATM-Signature-V1": V1_POST})),
            Lookup(creds(public_keys=(other,))),
        ),
        401,
        "invalid_signature",
    )


@pytest.mark.parametrize(
    "change",
    ["body", "query", "path", "method", "time", "window", "window_absent", "key_case"],
)
async def test_changed_request_fails(run: Run, change: str) -> None:
    headers = post_headers(**{"BlockATM-Signature-V2": V2_POST})
    method, path, query, body = "POST", POST_PATH, "", BODY
    if change == "body":
        body = BODY.replace(b'"100"', b'"1000"')
    elif change == "query":
        query = "x=1"
    elif change == "path":
        path = "/api/v1/payment/createQrOrder/"
    elif change == "method":
        method = "PUT"
    elif change == "time":
        headers["BlockATM-Request-Time"] = str(NOW - 1)
    elif change == "window":
        headers["BlockATM-Rec_Window"] = "30001"
    elif change == "window_absent":
        del headers["BlockATM-Rec_Window"]  # same default value, different signed line
    elif change == "key_case":
        headers["BlockATM-API-Key"] = API_KEY.upper()
    req = SignedRequest(method=method, path=path, query=query, headers=headers, body=body)
    lookup = Lookup(creds(), api_key=headers["BlockATM-API-Key"])
    await fails(run(req, lookup), 401, "invalid_signature")


# --- missing and unknown ------------------------------------------------------------------


async def test_missing_api_key(run: Run) -> None:
    headers = post_headers(**{"BlockATM-Signature-V2": V2_POST})
    del headers["BlockATM-API-Key"]
    await fails(run(post(headers)), 401, "missing_api_key")
    await fails(run(post({**headers, "BlockATM-API-Key": ""})), 401, "missing_api_key")


async def test_unknown_key(run: Run) -> None:
    lookup = Lookup(None)
    await fails(
        run(post(post_headers(**{"BlockATM-Signature-V2": V2_POST})), lookup),
        401,
        "invalid_api_key",
    )
    assert lookup.calls == 1
    unsigned = SignedRequest("GET", "/r", "", {"BlockATM-API-Key": API_KEY}, b"")
    await fails(run(unsigned, lookup, require_signature=False), 401, "invalid_api_key")


async def test_malformed_key_is_invalid_without_lookup(run: Run) -> None:
    lookup = Lookup(creds())
    headers = post_headers(**{"BlockATM-Signature-V2": V2_POST, "BlockATM-API-Key": "ak 1"})
    await fails(run(post(headers), lookup), 401, "invalid_api_key")
    assert lookup.calls == 0


async def test_missing_request_time(run: Run) -> None:
    headers = post_headers(**{"BlockATM-Signature-V2": V2_POST})
    del headers["BlockATM-Request-Time"]
    await fails(run(post(headers)), 401, "missing_request_time")


async def test_invalid_request_time(run: Run) -> None:
    headers = post_headers(**{"BlockATM-Signature-V2": V2_POST, "BlockATM-Request-Time": "1e3"})
    await fails(run(post(headers)), 400, "invalid_request_time")


async def test_write_without_signature_needs_no_lookup(run: Run) -> None:
    lookup = Lookup(creds())
    await fails(run(post(post_headers()), lookup), 401, "signature_required")
    assert lookup.calls == 0


async def test_read_with_key_alone(run: Run) -> None:
    req = SignedRequest("GET", "/r", "orderNo=1", {"BlockATM-API-Key": API_KEY}, b"")
    result = await run(req, require_signature=False)
    assert not result.signed
    # ... and again: unsigned reads are not replay-checked (there is nothing to key them by).
    assert not (await run(req, require_signature=False)).signed


async def test_read_with_key_alone_when_signed_reads(run: Run) -> None:
    req = SignedRequest("GET", "/r", "", {"BlockATM-API-Key": API_KEY}, b"")
    await fails(
        run(req, Lookup(creds(signed_reads=True)), require_signature=False),
        401,
        "signature_required",
    )


async def test_a_key_with_a_public_key_needs_signed_reads_by_default(run: Run) -> None:
    req = SignedRequest("GET", "/r", "", {"BlockATM-API-Key": API_KEY}, b"")
    public = (load_public_key_pem(PUBLIC_KEY_PEM),)
    await fails(
        run(req, Lookup(creds(public_keys=public)), require_signature=False),
        401,
        "signature_required",
    )
    # The operator may allow them explicitly ...
    allowed = await run(
        req, Lookup(creds(public_keys=public, signed_reads=False)), require_signature=False
    )
    assert not allowed.signed
    # ... and without a public key the default is the key alone.
    assert not (await run(req, Lookup(creds()), require_signature=False)).signed


async def test_read_with_a_bad_signature_fails(run: Run) -> None:
    req = SignedRequest(
        "GET",
        "/api/v1/payment/contractPayment",
        "orderNo=A-2",
        {
            "BlockATM-API-Key": API_KEY,
            "BlockATM-Request-Time": REQUEST_TIME,
            "BlockATM-Signature-V2": V2_GET,
        },
        b"",
    )
    await fails(run(req, require_signature=False), 401, "invalid_signature")


# --- the time rule at its edges ----------------------------------------------------------


def v2_request(request_time: int, window: str | None, secret: bytes = SECRET) -> SignedRequest:
    message = signing_string(API_KEY, str(request_time), window, "POST", POST_PATH, "", BODY)
    headers = {
        "BlockATM-API-Key": API_KEY,
        "BlockATM-Request-Time": str(request_time),
        "BlockATM-Signature-V2": sign_v2(secret, message),
    }
    if window is not None:
        headers["BlockATM-Rec_Window"] = window
    return post(headers)


@pytest.mark.parametrize(
    ("offset", "window", "ok"),
    [
        (-30_000, "30000", True),
        (-30_001, "30000", False),
        (-30_000, None, True),  # default window
        (-30_001, None, False),
        (-60_000, "60000", True),
        (-60_001, "60000", False),
        (-5_000, "5000", True),
        (-5_001, "5000", False),
        (1_000, "30000", True),
        (1_001, "30000", False),
        (1_000, None, True),
        (1_001, None, False),
    ],
)
async def test_time_rule_edges(run: Run, offset: int, window: str | None, ok: bool) -> None:
    req = v2_request(NOW + offset, window)
    if ok:
        assert (await run(req)).signed
    else:
        await fails(run(req), 401, "request_expired")


async def test_window_over_the_maximum(run: Run) -> None:
    await fails(run(v2_request(NOW, "60001")), 400, "invalid_recv_window")


async def test_window_aliases(run: Run) -> None:
    for n, alias in enumerate(("BlockATM-Rec-Window", "BlockATM-RECV_WINDOW")):
        req = v2_request(NOW - 1 - n, "20000")
        headers = dict(req.headers)
        headers[alias] = headers.pop("BlockATM-Rec_Window")
        assert (await run(post(headers))).signed
        req = v2_request(NOW - 10 - n, "20000")
        both = {**req.headers, alias: "20001"}
        await fails(run(post(both)), 400, "conflicting_recv_window")


async def test_stale_request_is_rejected_before_lookup(run: Run) -> None:
    lookup = Lookup(creds())
    await fails(run(v2_request(NOW - 30_001, None), lookup), 401, "request_expired")
    assert lookup.calls == 0


# --- replay -------------------------------------------------------------------------------


async def test_replay_is_rejected(run: Run) -> None:
    req = post(post_headers(**{"BlockATM-Signature-V2": V2_POST}))
    assert (await run(req)).signed
    await fails(run(req), 401, "replayed_request")


async def test_replay_is_remembered_for_the_whole_acceptance_span(
    run: Run, clock: FakeClock
) -> None:
    # Earliest acceptable moment: the request claims to be 1 s ahead of the server ...
    request_time = NOW + 1_000
    req = v2_request(request_time, "60000")
    assert (await run(req)).signed
    # ... latest: the server is a full 60 s window past it, 61 s later.
    clock.advance(61.0)
    assert clock.now_ms() == request_time + 60_000
    await fails(run(req), 401, "replayed_request")
    clock.advance(0.001)
    await fails(run(req), 401, "request_expired")


async def test_bad_signature_does_not_poison_the_replay_cache(run: Run) -> None:
    bad = post(post_headers(**{"BlockATM-Signature-V2": "0" * 64}))
    await fails(run(bad), 401, "invalid_signature")
    assert (await run(post(post_headers(**{"BlockATM-Signature-V2": V2_POST})))).signed


def _reencodings() -> dict[str, str]:
    der = base64.b64decode(V1_POST)
    r, s = decode_dss_signature(der)
    malleated = encode_dss_signature(r, P256_N - s)
    return {
        "der_hex": der.hex(),
        "raw_b64": base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode(),
        "malleated_der_b64": base64.b64encode(malleated).decode(),
        "malleated_der_hex": malleated.hex(),
        "malleated_raw_b64": base64.b64encode(
            r.to_bytes(32, "big") + (P256_N - s).to_bytes(32, "big")
        ).decode(),
    }


@pytest.mark.parametrize("variant", sorted(_reencodings()))
async def test_reencoded_or_malleated_v1_is_still_a_replay(
    run: Run, clock: FakeClock, variant: str
) -> None:
    lookup = Lookup(creds(public_keys=(load_public_key_pem(PUBLIC_KEY_PEM),)))
    alt = post(post_headers(**{"BlockATM-Signature-V1": _reencodings()[variant]}))
    # The variant is a valid signature on its own (a fresh cache accepts it) ...
    assert (await run(alt, lookup, store=MemoryReplayStore(clock))).signed
    # ... but after the original was accepted it is a replay.
    assert (await run(post(post_headers(**{"BlockATM-Signature-V1": V1_POST})), lookup)).signed
    await fails(run(alt, lookup), 401, "replayed_request")


async def test_v1_then_v2_of_the_same_string_is_a_replay(run: Run) -> None:
    lookup = Lookup(creds(public_keys=(load_public_key_pem(PUBLIC_KEY_PEM),), v2_enabled=True))
    assert (await run(post(post_headers(**{"BlockATM-Signature-V1": V1_POST})), lookup)).signed
    await fails(
        run(post(post_headers(**{"BlockATM-Signature-V2": V2_POST})), lookup),
        401,
        "replayed_request",
    )


# --- which signatures a key accepts ---------------------------------------------------------


async def test_v2_on_a_key_with_a_public_key(run: Run) -> None:
    key = load_public_key_pem(PUBLIC_KEY_PEM)
    await fails(
        run(
            post(post_headers(**{"BlockATM-Signature-V2": V2_POST})),
            Lookup(creds(public_keys=(key,))),
        ),
        401,
        "signature_v1_required",
    )


async def test_v2_on_a_key_with_a_public_key_and_v2_opted_in(run: Run) -> None:
    key = load_public_key_pem(PUBLIC_KEY_PEM)
    lookup = Lookup(creds(public_keys=(key,), v2_enabled=True))
    assert (await run(post(post_headers(**{"BlockATM-Signature-V2": V2_POST})), lookup)).signed


async def test_both_headers_with_v2_not_accepted(run: Run) -> None:
    key = load_public_key_pem(PUBLIC_KEY_PEM)
    headers = post_headers(**{"BlockATM-Signature-V1": V1_POST, "BlockATM-Signature-V2": V2_POST})
    await fails(run(post(headers), Lookup(creds(public_keys=(key,)))), 401, "signature_v1_required")


async def test_v1_verifies_against_any_registered_key(run: Run) -> None:
    others = tuple(ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(2))
    key = load_public_key_pem(PUBLIC_KEY_PEM)
    lookup = Lookup(creds(public_keys=(others[0], key, others[1])))
    assert (await run(post(post_headers(**{"BlockATM-Signature-V1": V1_POST})), lookup)).signed


async def test_v1_without_registered_keys(run: Run) -> None:
    await fails(
        run(post(post_headers(**{"BlockATM-Signature-V1": V1_POST}))), 401, "invalid_signature"
    )


async def test_v2_without_a_secret(run: Run) -> None:
    await fails(
        run(post(post_headers(**{"BlockATM-Signature-V2": V2_POST})), Lookup(creds(secret=None))),
        401,
        "invalid_signature",
    )


@pytest.mark.parametrize(
    ("v1", "v2", "ok"),
    [
        (V1_POST, V2_POST, True),
        (V1_POST, "0" * 64, False),
        ("MEYCIQ" + V1_POST[6:10] + "AAAA" + V1_POST[14:], V2_POST, False),
        ("", V2_POST, False),
        (V1_POST, "", False),
    ],
)
async def test_both_headers_must_verify(run: Run, v1: str, v2: str, ok: bool) -> None:
    key = load_public_key_pem(PUBLIC_KEY_PEM)
    lookup = Lookup(creds(public_keys=(key,), v2_enabled=True))
    headers = post_headers(**{"BlockATM-Signature-V1": v1, "BlockATM-Signature-V2": v2})
    if ok:
        assert (await run(post(headers), lookup)).signed
    else:
        await fails(run(post(headers), lookup), 401, "invalid_signature")


async def test_errors_and_reprs_never_carry_secrets(run: Run) -> None:
    secret_bits = (API_KEY, V2_POST, SECRET.decode())
    for req, lookup in (
        (post(post_headers(**{"BlockATM-Signature-V2": V2_POST})), Lookup(creds(secret=b"x"))),
        (post(post_headers(**{"BlockATM-Signature-V2": V2_POST})), Lookup(None)),
        (post(post_headers()), Lookup(creds())),
    ):
        with pytest.raises(GatewayError) as info:
            await run(req, lookup)
        error = info.value
        assert not any(bit in error.message or bit in repr(error) for bit in secret_bits)
    result = await run(post(post_headers(**{"BlockATM-Signature-V2": V2_POST})))
    assert not any(bit in repr(result) for bit in secret_bits)
