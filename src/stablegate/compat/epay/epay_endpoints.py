"""EPay's (彩虹易支付) merchant endpoints under ``/epay/``, as panels call them:

- ``submit.php`` (GET or POST form, from the customer's browser): creates the order and
  redirects (302) to its cashier page; a refusal is a short text page, 400.
- ``mapi.php`` (POST form, from the panel's server): creates the order and answers
  ``{"code": 1, "msg", "trade_no", "payurl"}``; a refusal ``{"code": -1, "msg"}``, HTTP 200.
- ``api.php?act=order&pid=&key=&out_trade_no=`` (or ``trade_no=``): the order in EPay's names,
  ``status`` 1 once paid; authenticated by the key itself, as EPay does.

The create parameters: ``pid``, ``type`` (kept and echoed, never used to choose anything),
``out_trade_no``, ``notify_url``, ``return_url``, ``name``, ``money`` (in the credential's
currency), ``sign``, ``sign_type`` (``MD5``), optional ``param`` (echoed); every other parameter
is signed with the rest and otherwise ignored (docs/INTEGRATIONS.md lists them).
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stablegate.compat.epay.credentials import EpayCredential, load_epay_credential
from stablegate.compat.epay.orders import (
    ForeignOrder,
    checked_amount,
    checked_name,
    checked_notify_url,
    checked_return_url,
    checked_trade_no,
    create_foreign_order,
    echoed_fields,
)
from stablegate.compat.epay.signing import EPAY_UNSIGNED, md5_verify
from stablegate.compat.epay.wire import (
    Params,
    failed_auth,
    json_answer,
    limited,
    request_params,
    text_param,
)
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import AuthError, GatewayError, InvalidRequest, NotFound
from stablegate.models import Order
from stablegate.models.order import NotifyFormat, OrderStatus
from stablegate.orders.endpoints import order_context
from stablegate.orders.payment_request import cashier_url
from stablegate.orders.queries import merchant_order
from stablegate.web.context import WebContext

router = APIRouter(prefix="/epay", tags=["compat"], include_in_schema=False)

_MONEY = re.compile(r"(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?")
MAX_TYPE = 32
MAX_PARAM = 512


def _foreign_order(params: Params) -> ForeignOrder:
    money = text_param(params, "money")
    assert money is not None
    if not _MONEY.fullmatch(money):
        raise InvalidRequest('money must be an amount such as "10.00"', code="invalid_amount")
    pay_type = text_param(params, "type")
    assert pay_type is not None
    if len(pay_type) > MAX_TYPE:
        raise InvalidRequest(f"type is at most {MAX_TYPE} characters")
    name = checked_name(text_param(params, "name") or "", "name")
    param = text_param(params, "param", required=False) or ""
    if len(param) > MAX_PARAM:
        raise InvalidRequest(f"param is at most {MAX_PARAM} characters")
    return_url = text_param(params, "return_url", required=False)
    return ForeignOrder(
        notify_format=NotifyFormat.EPAY,
        trade_no=checked_trade_no(text_param(params, "out_trade_no") or "", "out_trade_no"),
        fiat_amount=checked_amount(Decimal(money), "money"),
        notify_url=checked_notify_url(text_param(params, "notify_url") or "", "notify_url"),
        return_url=checked_return_url(return_url, "return_url") if return_url else None,
        name=name or None,
        # money as sent: shops compare the notification's money with their price as text.
        echoed={"type": pay_type, "name": name, "money": money, "param": param},
    )


async def _signed_credential(ctx: WebContext, ip: str, params: Params) -> EpayCredential:
    pid = text_param(params, "pid") or ""
    sign = params.get("sign")
    sign_type = text_param(params, "sign_type", required=False)
    if sign_type is not None and sign_type.upper() != "MD5":
        raise InvalidRequest("sign_type must be MD5")
    async with read_scope(ctx.sessions) as session:
        credential = await load_epay_credential(session, ctx.secret_box, pid)
    if credential is None:
        await failed_auth(ctx, ip, "invalid_api_key")
        raise AuthError("unknown pid", code="invalid_api_key")
    if not isinstance(sign, str) or not md5_verify(params, credential.key, sign, EPAY_UNSIGNED):
        await failed_auth(ctx, ip, "invalid_signature")
        raise AuthError("sign verification failed", code="invalid_signature")
    return credential


async def _create(request: Request) -> Order:
    ctx, ip = await limited(request)
    params = await request_params(request)
    credential = await _signed_credential(ctx, ip, params)
    foreign = _foreign_order(params)
    await ctx.factory_checks.require(ctx.registry.require(credential.chain_id))
    async with session_scope(ctx.sessions) as session:
        order, created = await create_foreign_order(
            session, ctx.clock, order_context(request), credential, foreign
        )
    if created:
        ctx.metrics.orders_created.labels(str(order.chain_id)).inc()
    structlog.contextvars.bind_contextvars(merchant_id=credential.merchant_id)
    return order


def _refusal_page(message: str) -> HTMLResponse:
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Payment error</title></head>'
        f"<body><h1>Payment error</h1><p>{escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=400, headers={"Cache-Control": "no-store"})


@router.api_route("/submit.php", methods=["GET", "POST"])
async def submit(request: Request) -> Response:
    try:
        order = await _create(request)
    except GatewayError as exc:
        return _refusal_page(exc.message)
    public_url = request.app.state.gateway.settings.public_url
    return RedirectResponse(cashier_url(public_url, order.id), status_code=302)


@router.post("/mapi.php")
async def mapi(request: Request) -> Response:
    try:
        order = await _create(request)
    except GatewayError as exc:
        return json_answer({"code": -1, "msg": exc.message})
    public_url = request.app.state.gateway.settings.public_url
    return json_answer(
        {
            "code": 1,
            "msg": "success",
            "trade_no": order.id,
            "payurl": cashier_url(public_url, order.id),
        }
    )


def epay_time(ms: int | None) -> str | None:
    """EPay's ``Y-m-d H:i:s``, in UTC."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def query_answer(order: Order, pid: str) -> dict[str, Any]:
    """``api.php?act=order``'s answer: ``status`` 1 once the order is completed, else 0."""
    echoed = echoed_fields(order, NotifyFormat.EPAY)
    money = echoed.get("money") or order.fiat_amount or ""
    return {
        "code": 1,
        "msg": "success",
        "trade_no": order.id,
        "out_trade_no": order.order_no,
        "type": echoed.get("type", ""),
        "pid": pid,
        "addtime": epay_time(order.create_time_ms),
        "endtime": epay_time(order.complete_time_ms),
        "name": echoed.get("name", order.description or ""),
        "money": money,
        "status": 1 if order.status == OrderStatus.COMPLETED else 0,
        "param": echoed.get("param", ""),
        "buyer": "",
    }


@router.api_route("/api.php", methods=["GET", "POST"])
async def api(request: Request) -> Response:
    try:
        ctx, ip = await limited(request)
        params = await request_params(request)
        act = text_param(params, "act")
        if act != "order":
            raise InvalidRequest("act must be order (the one query this gateway answers)")
        pid = text_param(params, "pid") or ""
        key = text_param(params, "key") or ""
        async with read_scope(ctx.sessions) as session:
            credential = await load_epay_credential(session, ctx.secret_box, pid)
            if credential is None or not hmac.compare_digest(
                credential.key.encode(), key.encode("utf-8")
            ):
                await failed_auth(ctx, ip, "invalid_api_key")
                raise AuthError("unknown pid or wrong key", code="invalid_api_key")
            trade_no = text_param(params, "trade_no", required=False)
            out_trade_no = text_param(params, "out_trade_no", required=False)
            if trade_no is None and out_trade_no is None:
                raise InvalidRequest("give out_trade_no or trade_no")
            order = await merchant_order(
                session, credential.merchant_id, order_id=trade_no, order_no=out_trade_no
            )
            if order is None or order.compat_key_id != credential.pid:
                raise NotFound("no such order")
            return json_answer(query_answer(order, credential.pid))
    except GatewayError as exc:
        return json_answer({"code": -1, "msg": exc.message})
