"""Merchant webhook endpoints: resend events, read the delivery log (both always signed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from stablegate.api.errors import validation_message
from stablegate.api.security import get_context, merchant_request
from stablegate.auth.json_body import parse_json_object
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import InvalidRequest
from stablegate.orders.schemas import ErrorResponse
from stablegate.pagination import CursorParam
from stablegate.webhooks import service

router = APIRouter(prefix="/api/v1/webhook", tags=["webhook"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 418, 429)
}


class ResendRequest(BaseModel):
    """Exactly one of: ``eventId`` (one event), ``failed: true`` (every failed event)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event_id: Annotated[StrictStr | None, Field(alias="eventId", min_length=1, max_length=64)] = (
        None
    )
    failed: StrictBool = False


class ResendResult(BaseModel):
    count: int


class Delivery(BaseModel):
    delivery_id: str = Field(alias="deliveryId")
    event_id: str = Field(alias="eventId")
    order_id: str = Field(alias="orderId")
    type: str
    sequence: int
    event_status: str = Field(alias="eventStatus")
    attempt: int
    url: str
    outcome: str
    response_status: int | None = Field(alias="responseStatus")
    response_body: str | None = Field(alias="responseBody")
    error: str | None
    latency_ms: int = Field(alias="latencyMs")
    attempt_time: int = Field(alias="attemptTime")


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None = Field(alias="nextCursor")


@router.post(
    "/resend",
    response_model=ResendResult,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ResendRequest.model_json_schema(by_alias=True)}
            },
        }
    },
    summary="Redeliver one event, or every failed one (signed)",
)
async def resend(request: Request) -> JSONResponse:
    ctx = get_context(request)
    auth = await merchant_request(request, write=True)
    try:
        req = ResendRequest.model_validate(parse_json_object(auth.body))
    except ValidationError as exc:
        code, message = validation_message(exc)
        raise InvalidRequest(message, code=code) from None
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
    return JSONResponse({"count": count}, headers=auth.rate_headers)


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    responses=_ERRORS,
    summary="The delivery log, newest attempt first (always signed)",
)
async def deliveries(
    request: Request,
    order_id: Annotated[str | None, Query(alias="orderId", max_length=64)] = None,
    event_id: Annotated[str | None, Query(alias="eventId", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorParam = None,
) -> JSONResponse:
    ctx = get_context(request)
    # The log shows response bodies and URLs: a read, but one that always needs a signature.
    auth = await merchant_request(request, write=True)
    async with read_scope(ctx.sessions) as session:
        items, next_cursor = await service.list_deliveries(
            session,
            merchant_id=auth.merchant_id,
            order_id=order_id,
            event_id=event_id,
            limit=limit,
            cursor=cursor,
        )
    return JSONResponse({"items": items, "nextCursor": next_cursor}, headers=auth.rate_headers)
