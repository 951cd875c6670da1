"""Authenticate one merchant API request (docs/DESIGN.md §2).

Order of the checks, cheapest and key-independent first so that bad traffic costs little:

1. ``BlockATM-API-Key`` present (401 ``missing_api_key``) and well formed (401
   ``invalid_api_key``).
2. A route that needs a signature and carries none: 401 ``signature_required``.
3. When a signature is present: request time (401 ``missing_request_time``, 400
   ``invalid_request_time``), receive window (400 ``invalid_recv_window`` /
   ``conflicting_recv_window``) and the time rule (401 ``request_expired``).
4. Key lookup: unknown key is 401 ``invalid_api_key``. A key with an IP allowlist used from
   another address is 403 ``ip_not_allowed``, before any signature is checked or the replay
   cache is touched (the address is the caller's :func:`~stablegate.auth.client_ip.client_ip`).
5. Unsigned request: allowed for reads unless the key requires signed reads (401
   ``signature_required``): set per key, and by default once a public key is registered.
6. Signature policy: once a public key is registered, V2 needs the merchant's opt-in (401
   ``signature_v1_required``); every signature present must verify (401 ``invalid_signature``).
7. Replay cache, only after the signatures verified so forged requests cannot fill it: 401
   ``replayed_request``.

Nothing here logs; keys, secrets and signatures never appear in error messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from stablegate.auth.client_ip import IPNetwork
from stablegate.auth.headers import (
    API_KEY_HEADER,
    AuthHeaders,
    check_request_time,
    is_well_formed_api_key,
    parse_recv_window,
    parse_request_time,
    read_auth_headers,
)
from stablegate.auth.ip_allowlist import ip_allowed
from stablegate.auth.replay import REPLAY_TTL_MS, ReplayStore, replay_key, replayed_request
from stablegate.auth.signatures import verify_v1, verify_v2
from stablegate.auth.signing import signing_string
from stablegate.clock import Clock
from stablegate.errors import AuthError, IpNotAllowed

# Stand-in secret for unknown keys, so a miss costs about what a V2 check on a known key does.
_DUMMY_SECRET = b"stablegate-unknown-key"


@dataclass(frozen=True)
class KeyCredentials:
    """What one API key may sign with, as loaded by the caller's lookup."""

    api_key_id: str
    merchant_id: str
    hmac_secret: bytes | None = field(repr=False)  # kept out of logs and tracebacks
    public_keys: tuple[EllipticCurvePublicKey, ...]
    # With public keys registered, V2 is accepted only when the merchant opted back in.
    v2_enabled: bool
    # Reads need a signature too: True or False as the operator set it, None for the default.
    signed_reads: bool | None
    # The networks the key may be used from; None: any address.
    ip_allowlist: tuple[IPNetwork, ...] | None = None

    @property
    def accepts_v2(self) -> bool:
        return self.hmac_secret is not None and (not self.public_keys or self.v2_enabled)

    @property
    def requires_signed_reads(self) -> bool:
        return signed_reads_required(self.signed_reads, has_public_key=bool(self.public_keys))


def signed_reads_required(setting: bool | None, *, has_public_key: bool) -> bool:
    """Whether reads need a signature. By default (``setting`` None) they do once a public key is
    registered: a merchant who moved to ECDSA keeps no secret in the API key, which then must
    not read orders on its own. The operator may still allow or require it explicitly."""
    return has_public_key if setting is None else setting


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that are authenticated.

    ``path`` is the path as sent (percent-encoding untouched) without the query; ``query`` the
    raw query string without ``?`` (empty when none); both decoded from the raw bytes as UTF-8.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class AuthResult:
    credentials: KeyCredentials
    # True when at least one signature verified (and the replay cache accepted the request).
    signed: bool
    api_key: str = field(repr=False)


Lookup = Callable[[str], Awaitable[KeyCredentials | None]]


async def authenticate(
    req: SignedRequest,
    lookup: Lookup,
    replay: ReplayStore,
    clock: Clock,
    *,
    require_signature: bool,
    client_ip: str | None = None,
) -> AuthResult:
    """Authenticate ``req`` or raise :class:`~stablegate.errors.GatewayError` (see module doc).

    ``require_signature`` is True for writes and the webhook delivery log. A read without a
    signature is accepted with the key alone (``signed=False``) unless the key
    :attr:`~KeyCredentials.requires_signed_reads`; a read that carries a signature is checked like
    a write. ``client_ip`` is checked against the key's IP allowlist (an unknown address is
    outside every list).
    """
    headers = read_auth_headers(req.headers)
    api_key = headers.api_key
    if api_key is None or api_key == "":
        raise AuthError(f"the {API_KEY_HEADER} header is missing", code="missing_api_key")
    if not is_well_formed_api_key(api_key):
        raise AuthError("unknown or revoked API key", code="invalid_api_key")

    has_signature = headers.signature_v1 is not None or headers.signature_v2 is not None
    if require_signature and not has_signature:
        raise AuthError(
            "this request must be signed (BlockATM-Signature-V1 or -V2)",
            code="signature_required",
        )

    message: bytes | None = None
    if has_signature:
        request_time = parse_request_time(headers.request_time)
        recv_window = parse_recv_window(headers.recv_window)
        check_request_time(request_time, recv_window, clock.now_ms())
        message = signing_string(
            api_key,
            headers.request_time or "",
            headers.recv_window,
            req.method,
            req.path,
            req.query,
            req.body,
        )

    credentials = await lookup(api_key)
    if credentials is None:
        if message is not None:
            verify_v2(_DUMMY_SECRET, message, headers.signature_v2 or "")
        raise AuthError(
            "unknown or revoked API key, or its merchant is not active", code="invalid_api_key"
        )

    if not ip_allowed(credentials.ip_allowlist, client_ip):
        raise IpNotAllowed("this API key may not be used from this address")

    if message is None:
        if credentials.requires_signed_reads:
            raise AuthError(
                "this API key requires signed reads (BlockATM-Signature-V1 or -V2)",
                code="signature_required",
            )
        return AuthResult(credentials=credentials, signed=False, api_key=api_key)

    _verify_signatures(credentials, headers, message)

    if not await replay.claim(replay_key(api_key, message), REPLAY_TTL_MS):
        raise replayed_request()
    return AuthResult(credentials=credentials, signed=True, api_key=api_key)


def _verify_signatures(credentials: KeyCredentials, headers: AuthHeaders, message: bytes) -> None:
    v1, v2 = headers.signature_v1, headers.signature_v2
    if v2 is not None and credentials.public_keys and not credentials.v2_enabled:
        raise AuthError(
            "this API key has a registered public key and accepts V1 signatures only"
            + ("; drop the V2 header" if v1 is not None else ""),
            code="signature_v1_required",
        )
    ok = True
    if v1 is not None:
        ok = any(verify_v1(key, message, v1) for key in credentials.public_keys) and ok
    if v2 is not None:
        if credentials.accepts_v2 and credentials.hmac_secret is not None:
            ok = verify_v2(credentials.hmac_secret, message, v2) and ok
        else:
            ok = False
    if not ok:
        raise AuthError("the signature does not match the request", code="invalid_signature")
