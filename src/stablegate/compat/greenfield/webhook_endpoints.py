"""Greenfield's webhook endpoints (``btcpay.store.webhooks.canmodifywebhooks``), each an HTTP 200:

- ``POST /api/v1/stores/{storeId}/webhooks``: create; the answer carries the ``secret`` (the
  one sent, or a generated one), the only time it is shown; the store's other webhooks are
  disabled (stablegate.compat.greenfield.webhooks);
- ``GET /api/v1/stores/{storeId}/webhooks`` and ``…/webhooks/{webhookId}``: without the secret;
- ``PUT …/webhooks/{webhookId}``: ``url``, ``enabled``, ``authorizedEvents``, ``secret``;
- ``DELETE …/webhooks/{webhookId}``.

The one-webhook forms also answer as ``/api/v1/webhooks/{webhookId}`` (the key's own store), as
BTCPay does. Deliveries and redelivery of one delivery are not offered.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.compat.greenfield.auth import GreenfieldRequest, authenticated
from stablegate.compat.greenfield.credentials import CAN_MODIFY_WEBHOOKS
from stablegate.compat.greenfield.store_endpoints import guarded
from stablegate.compat.greenfield.webhooks import (
    create_webhook,
    delete_webhook,
    find_webhook,
    list_webhooks,
    parse_webhook_fields,
    update_webhook,
    webhook_json,
)
from stablegate.compat.greenfield.wire import answer, json_body
from stablegate.db.engine import read_scope, session_scope

router = APIRouter(tags=["compat"], include_in_schema=False)

STORE = "/api/v1/stores/{store_id}/webhooks"
OWN = "/api/v1/webhooks"


async def _auth(request: Request, store_id: str | None) -> GreenfieldRequest:
    return await authenticated(request, CAN_MODIFY_WEBHOOKS, store_id)


def _actor(auth: GreenfieldRequest) -> str:
    return f"greenfield:{auth.credential.key_id}"


@router.post(STORE)
async def create(request: Request, store_id: str) -> Response:
    async def work() -> Response:
        auth = await _auth(request, store_id)
        fields = parse_webhook_fields(await json_body(request), creating=True)
        async with session_scope(auth.ctx.sessions) as session:
            webhook, secret = await create_webhook(
                session,
                auth.ctx.secret_box,
                auth.ctx.clock,
                merchant_id=auth.credential.merchant_id,
                fields=fields,
                actor=_actor(auth),
            )
            return answer(webhook_json(webhook, secret))

    return await guarded(work)


@router.get(STORE)
async def store_webhooks(request: Request, store_id: str) -> Response:
    async def work() -> Response:
        auth = await _auth(request, store_id)
        async with read_scope(auth.ctx.sessions) as session:
            found = await list_webhooks(session, auth.credential.merchant_id)
            return answer([webhook_json(w) for w in found])

    return await guarded(work)


async def _one(request: Request, store_id: str | None, webhook_id: str) -> Response:
    async def work() -> Response:
        auth = await _auth(request, store_id)
        async with read_scope(auth.ctx.sessions) as session:
            webhook = await find_webhook(session, auth.credential.merchant_id, webhook_id)
            return answer(webhook_json(webhook))

    return await guarded(work)


async def _update(request: Request, store_id: str | None, webhook_id: str) -> Response:
    async def work() -> Response:
        auth = await _auth(request, store_id)
        fields = parse_webhook_fields(await json_body(request), creating=False)
        async with session_scope(auth.ctx.sessions) as session:
            webhook = await update_webhook(
                session,
                auth.ctx.secret_box,
                auth.ctx.clock,
                merchant_id=auth.credential.merchant_id,
                webhook_id=webhook_id,
                fields=fields,
                actor=_actor(auth),
            )
            return answer(webhook_json(webhook))

    return await guarded(work)


async def _delete(request: Request, store_id: str | None, webhook_id: str) -> Response:
    async def work() -> Response:
        auth = await _auth(request, store_id)
        async with session_scope(auth.ctx.sessions) as session:
            await delete_webhook(
                session,
                auth.ctx.clock,
                merchant_id=auth.credential.merchant_id,
                webhook_id=webhook_id,
                actor=_actor(auth),
            )
        return answer({})

    return await guarded(work)


@router.get(STORE + "/{webhook_id}")
async def store_webhook(request: Request, store_id: str, webhook_id: str) -> Response:
    return await _one(request, store_id, webhook_id)


@router.get(OWN + "/{webhook_id}")
async def own_webhook(request: Request, webhook_id: str) -> Response:
    return await _one(request, None, webhook_id)


@router.put(STORE + "/{webhook_id}")
async def store_webhook_update(request: Request, store_id: str, webhook_id: str) -> Response:
    return await _update(request, store_id, webhook_id)


@router.put(OWN + "/{webhook_id}")
async def own_webhook_update(request: Request, webhook_id: str) -> Response:
    return await _update(request, None, webhook_id)


@router.delete(STORE + "/{webhook_id}")
async def store_webhook_delete(request: Request, store_id: str, webhook_id: str) -> Response:
    return await _delete(request, store_id, webhook_id)


@router.delete(OWN + "/{webhook_id}")
async def own_webhook_delete(request: Request, webhook_id: str) -> Response:
    return await _delete(request, None, webhook_id)
