"""Authenticate and rate-limit one request (the glue between HTTP and stablegate.auth): a
merchant's signed or key-only request, or an unauthenticated public one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import ClientDisconnect

from stablegate.auth.client_ip import client_ip, forwarded_for
from stablegate.auth.headers import API_KEY_HEADER
from stablegate.auth.json_body import MAX_BODY_BYTES
from stablegate.auth.replay import DeferredClaim, ReplayClaim, ReplayStore
from stablegate.auth.replay_db import DatabaseReplayStore
from stablegate.auth.verify import AuthResult, KeyCredentials, Lookup, SignedRequest, authenticate
from stablegate.db.engine import read_scope
from stablegate.errors import AuthError, GatewayError, IpNotAllowed
from stablegate.merchants.credentials import KnownKey
from stablegate.merchants.terms import MerchantTerms
from stablegate.web.context import WebContext, get_context


@dataclass(frozen=True)
class MerchantRequest:
    credentials: KeyCredentials
    body: bytes
    signed: bool
    rate_headers: dict[str, str]
    # The merchant's deposit strategy and payout addresses, read with the credentials.
    terms: MerchantTerms

    @property
    def merchant_id(self) -> str:
        return self.credentials.merchant_id


def request_ip(request: Request, ctx: WebContext) -> str:
    """The client's address: the one place it is computed (every limit and ban uses it)."""
    # The ASGI peer is the TCP peer: the servers do not let uvicorn rewrite it from headers.
    peer = request.client.host if request.client else None
    return client_ip(
        peer,
        forwarded_for(request.headers.getlist("x-forwarded-for")),
        ctx.settings.trusted_proxy_networks,
    )


async def public_request(request: Request) -> WebContext:
    """An unauthenticated request (public endpoints, the cashier page): limited per IP, never
    banned, since many customers may share one address."""
    ctx = get_context(request)
    await ctx.limiter.check_public(request_ip(request, ctx))
    return ctx


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read at most ``limit`` bytes; a larger body is refused without buffering all of it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise GatewayError("request body is larger than 64 KB", code="body_too_large", status=413)
    chunks: list[bytes] = []
    size = 0
    # The server cuts off a body that does not arrive in time (stablegate.api.server); this
    # deadline also holds under any other ASGI server.
    try:
        async with asyncio.timeout(get_context(request).settings.body_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise GatewayError(
                        "request body is larger than 64 KB", code="body_too_large", status=413
                    )
                chunks.append(chunk)
    except (TimeoutError, ClientDisconnect) as exc:
        raise GatewayError(
            "the request body was not received in time", code="request_timeout", status=408
        ) from exc
    return b"".join(chunks)


async def merchant_request(
    request: Request,
    *,
    write: bool,
    session: AsyncSession | None = None,
    body: bytes | None = None,
    limited: bool = True,
    claimed: bool = False,
) -> MerchantRequest:
    """Authenticate and rate-limit a merchant's request (docs/DESIGN.md §2).

    With ``session`` every database read and write of the check happens in the caller's
    transaction: the key's credentials (from this process's cache, checked against the credential
    epoch), a replay claim kept in the database, the key's last use. A signed order is then one
    transaction, and a request that fails after this leaves nothing behind. Without one, the
    credentials are read in a read-only transaction of their own.

    ``body`` is the body when it was already read, ``limited=False`` skips the key's rate limit
    and ``claimed=True`` the replay claim (Redis took it): for a request checked a second time,
    after :func:`cached_merchant_request` accepted it with credentials then found out of date."""
    ctx = get_context(request)
    known: KnownKey | None = None

    async def lookup(api_key: str) -> KeyCredentials | None:
        nonlocal known
        if session is not None:
            known = await ctx.credential_cache.lookup(session, api_key)
        else:
            async with read_scope(ctx.sessions) as own:
                known = await ctx.credential_cache.lookup(own, api_key)
        return None if known is None else known.credentials

    replay: ReplayStore = ctx.replay
    if claimed:
        replay = _ALREADY_CLAIMED
    elif session is not None and isinstance(replay, DatabaseReplayStore):
        replay = replay.within(session)
    if body is None:
        body = await read_body(request)
    result = await _authenticate(request, ctx, body, lookup, replay, write=write)
    if known is None:  # authenticate() only succeeds with credentials the lookup found
        raise RuntimeError("authenticated without credentials")
    await ctx.key_use.record(
        ctx.sessions, ctx.clock, result.credentials.api_key_id, session=session
    )
    return await _admitted(request, ctx, result, known, body, limited=limited)


class _AlreadyClaimed:
    async def claim(self, key: str, ttl_ms: int) -> bool:
        return True


_ALREADY_CLAIMED = _AlreadyClaimed()


@dataclass(frozen=True)
class CachedMerchantRequest:
    """A signed write checked with credentials from this process's cache and nothing read from
    the database: the statement that writes its effects must confirm ``epoch`` (the credentials
    are still current) and take ``claim`` (the replay claim, when the database keeps them)."""

    merchant: MerchantRequest
    epoch: int
    claim: ReplayClaim | None
    # The replay claim was already made outside the database (Redis): checking the request
    # again must not claim it a second time.
    claimed: bool


async def cached_merchant_request(request: Request, body: bytes) -> CachedMerchantRequest | None:
    """A signed write authenticated with this process's cached credentials alone, or None: the
    key is not cached, or the request is refused with them (they may be out of date: the caller
    then checks it with :func:`merchant_request`, which answers and counts the refusal)."""
    ctx = get_context(request)
    api_key = request.headers.get(API_KEY_HEADER)
    cached = ctx.credential_cache.peek(api_key) if api_key else None
    if cached is None:
        return None
    known, epoch = cached

    async def lookup(key: str) -> KeyCredentials | None:
        # authenticate() reads the same header (a second, different value is refused there).
        return known.credentials if key == api_key else None

    deferred = DeferredClaim() if isinstance(ctx.replay, DatabaseReplayStore) else None
    replay: ReplayStore = ctx.replay if deferred is None else deferred
    try:
        result = await authenticate(
            _signed_request(request, body),
            lookup,
            replay,
            ctx.clock,
            require_signature=True,
            client_ip=request_ip(request, ctx),
        )
    except GatewayError:
        return None
    claim = None
    if deferred is not None and deferred.key is not None:
        now = ctx.clock.now_ms()
        claim = ReplayClaim(deferred.key, now + deferred.ttl_ms, now)
    # At most once a minute per key, in a transaction of its own (best effort).
    await ctx.key_use.record(ctx.sessions, ctx.clock, result.credentials.api_key_id)
    merchant = await _admitted(request, ctx, result, known, body, limited=True)
    return CachedMerchantRequest(merchant, epoch, claim, claimed=deferred is None)


async def refuse_after_authentication(request: Request, exc: AuthError) -> None:
    """Count a refusal found after authenticating (a replay the order's statement found) as
    :func:`merchant_request` counts its own."""
    ctx = get_context(request)
    ctx.metrics.auth_failures.labels(exc.code).inc()
    await ctx.limiter.note_failed_auth(request_ip(request, ctx))


async def _authenticate(
    request: Request,
    ctx: WebContext,
    body: bytes,
    lookup: Lookup,
    replay: ReplayStore,
    *,
    write: bool,
) -> AuthResult:
    ip = request_ip(request, ctx)
    try:
        return await authenticate(
            _signed_request(request, body),
            lookup,
            replay,
            ctx.clock,
            require_signature=write,
            client_ip=ip,
        )
    except (AuthError, IpNotAllowed) as exc:
        ctx.metrics.auth_failures.labels(exc.code).inc()
        # Only failures are limited (per IP, 429 once over budget): checking the address before
        # authenticating would let junk from a shared address lock out correctly signed
        # requests. Refusing after the check costs what any unauthenticated request costs; it
        # does not protect secrets (keys and signatures are far beyond guessing), it keeps
        # failing clients from retrying at full speed.
        await ctx.limiter.note_failed_auth(ip)
        raise
    except GatewayError as exc:
        ctx.metrics.auth_failures.labels(exc.code).inc()
        raise


async def _admitted(
    request: Request,
    ctx: WebContext,
    result: AuthResult,
    known: KnownKey,
    body: bytes,
    *,
    limited: bool,
) -> MerchantRequest:
    """The authenticated request, once the key's rate limit lets it through."""
    key_id = result.credentials.api_key_id
    rate_headers: dict[str, str] = {}
    if limited:
        ip = request_ip(request, ctx)
        # Reads made with the key alone have their own budget: they never starve signed ones.
        if result.signed:
            rate_headers = await ctx.limiter.check_key(key_id, ip)
        else:
            rate_headers = await ctx.limiter.check_unsigned_read(key_id, ip)
        # Error responses of this request carry them too (added by the app middleware).
        request.state.rate_headers = rate_headers
    else:
        rate_headers = getattr(request.state, "rate_headers", {})
    structlog.contextvars.bind_contextvars(merchant_id=result.credentials.merchant_id)
    return MerchantRequest(result.credentials, body, result.signed, rate_headers, known.terms)


def _signed_request(request: Request, body: bytes) -> SignedRequest:
    return SignedRequest(
        method=request.method.upper(),
        path=_raw_path(request),
        query=request.scope.get("query_string", b"").decode("utf-8", "surrogateescape"),
        headers=request.headers,
        body=body,
    )


def _raw_path(request: Request) -> str:
    """The path as the client sent it (percent-encoding untouched), which is what was signed."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).split(b"?", 1)[0].decode("utf-8", "surrogateescape")
    return str(request.url.path)
