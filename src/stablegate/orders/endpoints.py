"""Merchant order endpoints: createQrOrder, contractPayment (one or a page), cancelOrder."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.auth.json_body import parse_json_object
from stablegate.auth.replay_db import DatabaseReplayStore
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import AuthError, GatewayError
from stablegate.models import Order
from stablegate.orders import service
from stablegate.orders.context import OrderContext
from stablegate.orders.insert_guard import ConfirmedRefusal, InsertGuard, StaleCredentials
from stablegate.orders.payment_request import payment_uri, qr_data_url
from stablegate.orders.schemas import CreateOrderRequest, OrderOut, OrderPage, OrderRef
from stablegate.orders.view import created_view, order_out
from stablegate.pagination import CursorParam
from stablegate.web.context import get_context
from stablegate.web.errors import error_responses, json_body_schema, validated
from stablegate.web.security import (
    CachedMerchantRequest,
    MerchantRequest,
    cached_merchant_request,
    merchant_request,
    read_body,
    refuse_after_authentication,
)

# Sent with json.dumps like every other answer; only the fields that were set (a page's
# orders have no ``payments``, an order without ``inlineQr`` no ``qrCodeDataUrl`` and
# ``paymentQrDataUrl``).
router = APIRouter(prefix="/api/v1/payment", tags=["payment"], default_response_class=JSONResponse)
_ERRORS = error_responses(400, 401, 404, 409, 413, 418, 429, 503)


def order_context(request: Request) -> OrderContext:
    """The orders' own state, put in ``app.state`` by the app."""
    ctx: OrderContext = request.app.state.order_context
    return ctx


@router.post(
    "/createQrOrder",
    response_model=OrderOut,
    openapi_extra=json_body_schema(CreateOrderRequest),
    summary="Create a payment order (signed)",
    responses=_ERRORS,
    response_model_exclude_unset=True,
)
async def create_qr_order(request: Request) -> Response:
    body = await read_body(request)
    cached = None
    if order_context(request).signed_orders is not None:
        cached = await cached_merchant_request(request, body)
    if cached is None:  # not cached, or refused with what was: checked from the database
        return await _create_in_transaction(request, body, limited=True, claimed=False)
    answer = await _create_in_one_statement(request, cached)
    if answer is None:
        # The key's credentials changed since they were cached, or the order needs a
        # transaction: checked again from the database, its rate limit already counted.
        return await _create_in_transaction(request, body, limited=False, claimed=cached.claimed)
    return answer


async def _create_in_one_statement(
    request: Request, cached: CachedMerchantRequest
) -> Response | None:
    """A signed order with credentials this process has cached: the credential check, the
    replay claim, the order and its event written at once (one statement on PostgreSQL, one
    hop to a thread on SQLite; docs/DESIGN.md §2).

    None when it could not be: the order needs a transaction, the credentials changed, or the
    request is refused before the write confirmed them (a bad body, a payout address the
    cached terms lack): the transaction path then answers with credentials read anew. Only
    what the write itself decided, with the epoch confirmed, is answered here: a replay,
    or the order (new, repeated, or 409 for a repeat with other fields)."""
    ctx = get_context(request)
    auth = cached.merchant
    try:
        req = validated(CreateOrderRequest, parse_json_object(auth.body))
        if not service.writes_directly(req, auth.terms):
            return None
        await ctx.factory_checks.require(ctx.registry.require(req.chain_id))
        # The session only reads a repeat (or purges expired claims): no connection otherwise.
        async with session_scope(ctx.sessions) as session:
            guard = InsertGuard(cached.epoch, cached.claim)
            order, created = await _create(request, session, auth, req, guard)
            if cached.claim is not None and isinstance(ctx.replay, DatabaseReplayStore):
                await ctx.replay.claimed_elsewhere(session)
    except StaleCredentials:
        return None
    except ConfirmedRefusal as refusal:
        if isinstance(refusal.error, AuthError):  # the claim was live: a replay
            await refuse_after_authentication(request, refusal.error)
        raise refusal.error from None
    except GatewayError:
        return None
    return _order_answer(request, order, created, req, auth.rate_headers)


async def _create_in_transaction(
    request: Request, body: bytes, *, limited: bool, claimed: bool
) -> Response:
    ctx = get_context(request)
    # One transaction: the key's credentials, the replay claim and the order (docs/DESIGN.md §2).
    async with session_scope(ctx.sessions) as session:
        auth = await merchant_request(
            request, write=True, session=session, body=body, limited=limited, claimed=claimed
        )
        req = validated(CreateOrderRequest, parse_json_object(auth.body))
        # Canonical chains need no node; another chain's factory was asked at start-up (if the
        # node did not answer then, the first order asks it again, holding this transaction).
        await ctx.factory_checks.require(ctx.registry.require(req.chain_id))
        order, created = await _create(request, session, auth, req, None)
    return _order_answer(request, order, created, req, auth.rate_headers)


async def _create(
    request: Request,
    session: AsyncSession,
    auth: MerchantRequest,
    req: CreateOrderRequest,
    guard: InsertGuard | None,
) -> tuple[Order, bool]:
    """The signed API's order: one INSERT where it can be, the key's terms read with it."""
    return await service.create_order(
        session,
        get_context(request).clock,
        order_context(request),
        merchant_id=auth.merchant_id,
        req=req,
        terms=auth.terms,
        detached=True,
        guard=guard,
    )


def _order_answer(
    request: Request,
    order: Order,
    created: bool,
    req: CreateOrderRequest,
    rate_headers: dict[str, str],
) -> Response:
    ctx = get_context(request)
    if created:
        ctx.metrics.orders_created.labels(str(order.chain_id)).inc()
        # The order as its first event has it: rendered once (a repeat is rendered as stored).
        written = created_view(order)
        if written is not None and not req.inline_qr:
            return JSONResponse(written, headers=rate_headers)
    view = order_out(order, ctx.registry, ctx.settings.public_url)
    if req.inline_qr:
        view.qrCodeDataUrl = qr_data_url(order.to_address)
        view.paymentQrDataUrl = qr_data_url(payment_uri(order))
    # The view was validated when it was built: answered as it is, not validated again against
    # the response model (which still documents the answer).
    return JSONResponse(view.model_dump(exclude_unset=True), headers=rate_headers)


@router.get(
    "/contractPayment",
    response_model=OrderOut | OrderPage,
    summary="One order with its payments, or a page of orders",
    responses=_ERRORS,
    response_model_exclude_unset=True,
)
async def contract_payment(
    request: Request,
    response: Response,
    order_id: Annotated[str | None, Query(alias="orderId", max_length=64)] = None,
    order_no: Annotated[str | None, Query(alias="orderNo", max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorParam = None,
) -> OrderOut | OrderPage:
    ctx = get_context(request)
    auth = await merchant_request(request, write=False)
    response.headers.update(auth.rate_headers)
    async with read_scope(ctx.sessions) as session:
        if order_id is not None or order_no is not None:
            order = await service.get_order(
                session, auth.merchant_id, order_id=order_id, order_no=order_no
            )
            view = order_out(order, ctx.registry, ctx.settings.public_url)
            view.payments = await service.payments_of(session, order, ctx.registry)
            return view
        orders, next_cursor = await service.list_orders(
            session, auth.merchant_id, status=status, since_ms=since, limit=limit, cursor=cursor
        )
        return OrderPage(
            items=[order_out(o, ctx.registry, ctx.settings.public_url) for o in orders],
            nextCursor=next_cursor,
        )


@router.post(
    "/cancelOrder",
    response_model=OrderOut,
    openapi_extra=json_body_schema(OrderRef),
    summary="Cancel a pending order with no payment seen (signed)",
    responses=_ERRORS,
    response_model_exclude_unset=True,
)
async def cancel_order(request: Request, response: Response) -> OrderOut:
    ctx = get_context(request)
    auth = await merchant_request(request, write=True)
    ref = validated(OrderRef, parse_json_object(auth.body))
    async with session_scope(ctx.sessions) as session:
        order = await service.cancel_order(
            session,
            ctx.clock,
            order_context(request),
            merchant_id=auth.merchant_id,
            order_id=ref.order_id,
            order_no=ref.order_no,
        )
        view = order_out(order, ctx.registry, ctx.settings.public_url)
    response.headers.update(auth.rate_headers)
    return view
