"""``Authorization: token <key>``: the credential of a Greenfield request, and its permission on
the store the path names.

An unknown, revoked or malformed key (or one of a disabled merchant) is 401 and counted against
the client's address like the signed API's failures; a known key is limited per key like a
signed request. A key asking for another store, or without the permission an endpoint needs,
is 403 ``missing_permission``."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from fastapi import Request

from stablegate.compat.greenfield.credentials import (
    GreenfieldCredential,
    load_greenfield_credential,
)
from stablegate.db.engine import read_scope
from stablegate.errors import AuthError, Forbidden
from stablegate.web.context import WebContext, get_context
from stablegate.web.security import request_ip


@dataclass(frozen=True)
class GreenfieldRequest:
    ctx: WebContext
    credential: GreenfieldCredential
    key: str


def _token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    return value.strip() if scheme.lower() == "token" else ""


async def authenticated(
    request: Request, permission: str | None = None, store_id: str | None = None
) -> GreenfieldRequest:
    """The request's credential, holding ``permission`` on ``store_id`` when given."""
    ctx = get_context(request)
    ip = request_ip(request, ctx)
    key = _token(request)
    credential = None
    if key:
        async with read_scope(ctx.sessions) as session:
            credential = await load_greenfield_credential(session, key)
    if credential is None:
        code = "invalid_api_key" if key else "missing_api_key"
        ctx.metrics.auth_failures.labels(code).inc()
        await ctx.limiter.note_failed_auth(ip)
        raise AuthError("authenticate with the header Authorization: token <key>", code=code)
    await ctx.key_use.record(ctx.sessions, ctx.clock, credential.key_id)
    request.state.rate_headers = await ctx.limiter.check_key(credential.key_id, ip)
    structlog.contextvars.bind_contextvars(merchant_id=credential.merchant_id)
    if store_id is not None and store_id != credential.store_id:
        raise Forbidden("this key is not allowed on that store", code="missing_permission")
    if permission is not None and not credential.allows(permission, credential.store_id):
        raise Forbidden(f"this key does not hold {permission}", code="missing_permission")
    return GreenfieldRequest(ctx, credential, key)
