"""Epusdt's ``POST /api/v1/order/create-transaction``, under ``/epusdt/{pid}`` (Epusdt serves
one merchant and its requests name none, so the pid is in the base URL the plugin is given).

Every answer is HTTP 200 with ``{"status_code", "message", "data", "request_id"}``:
``status_code`` 200 with the order, 400 for bad input, 401 for an unknown pid or a wrong
signature, 429 over the address's budget, 503 without a usable rate; ``data`` is null then.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.compat.epay.credentials import EpayCredential, load_epay_credential
from stablegate.compat.epay.orders import (
    ForeignOrder,
    checked_amount,
    checked_notify_url,
    checked_return_url,
    checked_trade_no,
    create_foreign_order,
)
from stablegate.compat.epay.signing import EPUSDT_UNSIGNED, md5_verify
from stablegate.compat.epay.wire import Params, failed_auth, json_answer, limited, request_params
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import AuthError, GatewayError, InvalidRequest
from stablegate.models import Order
from stablegate.models.order import NotifyFormat
from stablegate.money import format_amount
from stablegate.orders.endpoints import order_context
from stablegate.orders.payment_request import cashier_url
from stablegate.rates.pricing import decimal_text
from stablegate.web.context import WebContext

router = APIRouter(prefix="/epusdt/{pid}", tags=["compat"], include_in_schema=False)
log = structlog.get_logger("stablegate.compat")


def _answer(status_code: int, message: str, data: dict[str, Any] | None = None) -> Response:
    request_id = structlog.contextvars.get_contextvars().get("request_id", "")
    return json_answer(
        {"status_code": status_code, "message": message, "data": data, "request_id": request_id}
    )


def _foreign_order(params: Params) -> ForeignOrder:
    order_id = params.get("order_id")
    if not isinstance(order_id, str) or order_id == "":
        raise InvalidRequest("order_id is required and must be a string")
    amount = params.get("amount")
    if amount is None or amount == "":
        raise InvalidRequest("amount is required")
    try:
        # A number is signed in its shortest form; a string (which Epusdt itself would not
        # bind) is taken as the same number.
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise InvalidRequest("amount must be a number", code="invalid_amount") from None
    if not value.is_finite():
        raise InvalidRequest("amount must be a number", code="invalid_amount")
    notify_url = params.get("notify_url")
    if not isinstance(notify_url, str) or notify_url == "":
        raise InvalidRequest("notify_url is required and must be a string")
    redirect_url = params.get("redirect_url")
    if redirect_url is not None and not isinstance(redirect_url, str):
        raise InvalidRequest("redirect_url must be a string")
    fiat = checked_amount(value, "amount")
    return ForeignOrder(
        notify_format=NotifyFormat.EPUSDT,
        trade_no=checked_trade_no(order_id, "order_id"),
        fiat_amount=fiat,
        notify_url=checked_notify_url(notify_url, "notify_url"),
        return_url=checked_return_url(redirect_url, "redirect_url") if redirect_url else None,
        name=None,
        echoed={"amount": decimal_text(fiat)},
    )


def order_data(order: Order, public_url: str) -> dict[str, Any]:
    """The order as Epusdt's ``data`` names it: amounts are numbers (fiat, then the token)."""
    return {
        "trade_id": order.id,
        "order_id": order.order_no,
        "amount": Decimal(order.fiat_amount or "0"),
        "actual_amount": Decimal(format_amount(order.amount, order.decimals)),
        "token": order.to_address,
        "expiration_time": order.expire_time_ms // 1000,
        "payment_url": cashier_url(public_url, order.id),
    }


async def _credential(ctx: WebContext, ip: str, pid: str, params: Params) -> EpayCredential:
    async with read_scope(ctx.sessions) as session:
        credential = await load_epay_credential(session, ctx.secret_box, pid)
    signature = params.get("signature")
    if credential is None:
        await failed_auth(ctx, ip, "invalid_api_key")
        raise AuthError("unknown pid", code="invalid_api_key")
    if not isinstance(signature, str) or not md5_verify(
        params, credential.key, signature, EPUSDT_UNSIGNED
    ):
        await failed_auth(ctx, ip, "invalid_signature")
        raise AuthError("signature verification failed", code="invalid_signature")
    return credential


@router.post("/api/v1/order/create-transaction")
async def create_transaction(request: Request, pid: str) -> Response:
    try:
        ctx, ip = await limited(request)
        params = await request_params(request)
        credential = await _credential(ctx, ip, pid, params)
        foreign = _foreign_order(params)
        chain = ctx.registry.require(credential.chain_id)
        await ctx.factory_checks.require(chain)
        async with session_scope(ctx.sessions) as session:
            order, created = await create_foreign_order(
                session, ctx.clock, order_context(request), credential, foreign
            )
            data = order_data(order, ctx.settings.public_url)
        if created:
            ctx.metrics.orders_created.labels(str(order.chain_id)).inc()
        structlog.contextvars.bind_contextvars(merchant_id=credential.merchant_id)
        return _answer(200, "success", data)
    except GatewayError as exc:
        return _answer(exc.status if exc.status in (401, 429, 503) else 400, exc.message)
