"""Merchant webhook endpoints: resend events, read the delivery log (both always signed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from stablegate.auth.json_body import parse_json_object
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import InvalidRequest
from stablegate.pagination import CursorParam
from stablegate.web.context import get_context
from stablegate.web.errors import error_responses, json_body_schema, validated
from stablegate.web.security import merchant_request
from stablegate.webhooks import service
from stablegate.webhooks.schemas import DeliveryPage, ResendRequest, ResendResult

# Sent with json.dumps like every other answer.
router = APIRouter(prefix="/api/v1/webhook", tags=["webhook"], default_response_class=JSONResponse)

_ERRORS = error_responses(400, 401, 404, 413, 418, 429)


@router.post(
    "/resend",
    response_model=ResendResult,
    responses=_ERRORS,
    openapi_extra=json_body_schema(ResendRequest),
    summary="Redeliver one event, or every failed one (signed)",
)
async def resend(request: Request, response: Response) -> ResendResult:
    ctx = get_context(request)
    auth = await merchant_request(request, write=True)
    req = validated(ResendRequest, parse_json_object(auth.body))
    if (req.event_id is None) == (not req.failed):
        raise InvalidRequest('give either "eventId" or "failed": true', code="invalid_request")
    async with session_scope(ctx.sessions) as session:
        count = await service.resend(
            session,
            ctx.clock,
            merchant_id=auth.merchant_id,
            event_id=req.event_id,
            failed=req.failed,
            actor=f"api:{auth.credentials.api_key_id}",
        )
    response.headers.update(auth.rate_headers)
    return ResendResult(count=count)


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    responses=_ERRORS,
    summary="The delivery log, newest attempt first (always signed)",
)
async def deliveries(
    request: Request,
    response: Response,
    order_id: Annotated[str | None, Query(alias="orderId", max_length=64)] = None,
    event_id: Annotated[str | None, Query(alias="eventId", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorParam = None,
) -> DeliveryPage:
    ctx = get_context(request)
    # The log shows response bodies and URLs: a read, but one that always needs a signature.
    auth = await merchant_request(request, write=True)
    async with read_scope(ctx.sessions) as session:
        page = await service.deliveries_page(
            session,
            merchant_id=auth.merchant_id,
            order_id=order_id,
            event_id=event_id,
            limit=limit,
            cursor=cursor,
        )
    response.headers.update(auth.rate_headers)
    return page
