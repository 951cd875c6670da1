"""Merchant order endpoints: createQrOrder, contractPayment (one or a page), cancelOrder."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from stablegate.api.errors import validation_message
from stablegate.api.security import get_context, merchant_request
from stablegate.auth.json_body import parse_json_object
from stablegate.cashier.qr import qr_data_url
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import InvalidRequest
from stablegate.orders import service
from stablegate.orders.schemas import (
    CreateOrderRequest,
    ErrorResponse,
    OrderOut,
    OrderPage,
    OrderRef,
)
from stablegate.orders.view import order_view
from stablegate.pagination import CursorParam

M = TypeVar("M", bound=BaseModel)

router = APIRouter(prefix="/api/v1/payment", tags=["payment"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 418, 429, 503)
}


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema(by_alias=True)}},
        }
    }


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        code, message = validation_message(exc)
        raise InvalidRequest(message, code=code) from None


@router.post(
    "/createQrOrder",
    response_model=OrderOut,
    responses=_ERRORS,
    openapi_extra=_body_schema(CreateOrderRequest),
    summary="Create a payment order (signed)",
)
async def create_qr_order(request: Request) -> JSONResponse:
    ctx = get_context(request)
    auth = await merchant_request(request, write=True)
    req = _validate(CreateOrderRequest, parse_json_object(auth.body))
    # Before any transaction: the first order on a chain may ask its node about the factory.
    await ctx.factory_checks.require(ctx.registry.require(req.chain_id))
    async with session_scope(ctx.sessions) as session:
        order, created = await service.create_order(
            session, ctx.clock, ctx.orders, merchant_id=auth.merchant_id, req=req
        )
        view = order_view(order, ctx.registry, ctx.settings.public_url)
    if created:
        ctx.metrics.orders_created.labels(str(order.chain_id)).inc()
    if req.inline_qr:
        view["qrCodeDataUrl"] = qr_data_url(order.to_address)
    return JSONResponse(view, headers=auth.rate_headers)


@router.get(
    "/contractPayment",
    response_model=OrderOut | OrderPage,
    responses=_ERRORS,
    summary="One order with its payments, or a page of orders",
)
async def contract_payment(
    request: Request,
    order_id: Annotated[str | None, Query(alias="orderId", max_length=64)] = None,
    order_no: Annotated[str | None, Query(alias="orderNo", max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorParam = None,
) -> JSONResponse:
    ctx = get_context(request)
    auth = await merchant_request(request, write=False)
    async with read_scope(ctx.sessions) as session:
        if order_id is not None or order_no is not None:
            order = await service.get_order(
                session, auth.merchant_id, order_id=order_id, order_no=order_no
            )
            view = order_view(order, ctx.registry, ctx.settings.public_url)
            view["payments"] = await service.payments_of(session, order)
            return JSONResponse(view, headers=auth.rate_headers)
        orders, next_cursor = await service.list_orders(
            session, auth.merchant_id, status=status, since_ms=since, limit=limit, cursor=cursor
        )
        page = {
            "items": [order_view(o, ctx.registry, ctx.settings.public_url) for o in orders],
            "nextCursor": next_cursor,
        }
    return JSONResponse(page, headers=auth.rate_headers)


@router.post(
    "/cancelOrder",
    response_model=OrderOut,
    responses=_ERRORS,
    openapi_extra=_body_schema(OrderRef),
    summary="Cancel a pending order with no payment seen (signed)",
)
async def cancel_order(request: Request) -> JSONResponse:
    ctx = get_context(request)
    auth = await merchant_request(request, write=True)
    ref = _validate(OrderRef, parse_json_object(auth.body))
    async with session_scope(ctx.sessions) as session:
        order = await service.cancel_order(
            session,
            ctx.clock,
            ctx.orders,
            merchant_id=auth.merchant_id,
            order_id=ref.order_id,
            order_no=ref.order_no,
        )
        view = order_view(order, ctx.registry, ctx.settings.public_url)
    return JSONResponse(view, headers=auth.rate_headers)
