"""Greenfield's invoice endpoints under ``/api/v1/stores/{storeId}/invoices``:

- ``POST``  (``cancreateinvoice``): create one (invoice_requests says what is read);
- ``GET``   (``canviewinvoices``): list, newest first, ``take`` (default and at most 1000),
  ``skip``, repeated ``orderId=`` and ``status=``; other filters are ignored;
- ``GET /{invoiceId}`` and ``GET /{invoiceId}/payment-methods`` (``canviewinvoices``);
- ``POST /{invoiceId}/status`` (``canmodifyinvoices``): ``{"status": "Invalid" | "Settled"}``.

Each also answers without the ``/stores/{storeId}`` prefix (``/api/v1/invoices/…``), as BTCPay
does, for the key's own store. ``GET /i/{invoiceId}``, where the WooCommerce plugin sends a
shopper back to an invoice, redirects to the order's cashier page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stablegate.compat.greenfield.auth import authenticated
from stablegate.compat.greenfield.credentials import (
    CAN_CREATE_INVOICE,
    CAN_MODIFY_INVOICES,
    CAN_VIEW_INVOICES,
)
from stablegate.compat.greenfield.invoice_requests import parse_invoice_request
from stablegate.compat.greenfield.invoice_view import invoice_json, invoice_payment_methods_json
from stablegate.compat.greenfield.invoices import (
    MAX_TAKE,
    create_invoice,
    find_invoice,
    list_invoices,
    mark_invoice,
)
from stablegate.compat.greenfield.payment_methods import store_payment_methods
from stablegate.compat.greenfield.statuses import InvoiceStatus
from stablegate.compat.greenfield.store_endpoints import guarded
from stablegate.compat.greenfield.wire import answer, invalid, json_body
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import NotFound
from stablegate.orders import queries
from stablegate.orders.endpoints import order_context
from stablegate.orders.payment_request import cashier_url
from stablegate.web.security import public_request

router = APIRouter(tags=["compat"], include_in_schema=False)

STORE = "/api/v1/stores/{store_id}/invoices"
OWN = "/api/v1/invoices"


def _count(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) > high:
        raise invalid(name, f"a whole number from 0 to {high} is expected")
    return int(raw)


def _statuses(request: Request) -> list[InvoiceStatus]:
    found = []
    for value in request.query_params.getlist("status"):
        try:
            found.append(InvoiceStatus(value))
        except ValueError:
            raise invalid("status", f"{value[:32]!r} is not an invoice status") from None
    return found


@router.post(STORE)
async def create(request: Request, store_id: str) -> Response:
    async def work() -> Response:
        auth = await authenticated(request, CAN_CREATE_INVOICE, store_id)
        ctx, credential = auth.ctx, auth.credential
        body = await json_body(request)
        async with read_scope(ctx.sessions) as session:
            methods = await store_payment_methods(session, ctx.registry, credential.merchant_id)
        invoice = parse_invoice_request(body, methods, credential)
        await ctx.factory_checks.require(ctx.registry.require(invoice.method.chain_id))
        async with session_scope(ctx.sessions) as session:
            order = await create_invoice(
                session, ctx.clock, order_context(request), credential, invoice
            )
            data = invoice_json(order, ctx.settings.public_url)
        ctx.metrics.orders_created.labels(str(invoice.method.chain_id)).inc()
        return answer(data)

    return await guarded(work)


async def _list(request: Request, store_id: str | None) -> Response:
    async def work() -> Response:
        auth = await authenticated(request, CAN_VIEW_INVOICES, store_id)
        order_ids = [v for v in request.query_params.getlist("orderId") if v]
        async with read_scope(auth.ctx.sessions) as session:
            orders = await list_invoices(
                session,
                auth.credential,
                order_ids=order_ids,
                statuses=_statuses(request),
                skip=_count(request, "skip", 0, 10**9),
                take=_count(request, "take", MAX_TAKE, MAX_TAKE),
            )
            return answer([invoice_json(o, auth.ctx.settings.public_url) for o in orders])

    return await guarded(work)


async def _one(request: Request, store_id: str | None, invoice_id: str) -> Response:
    async def work() -> Response:
        auth = await authenticated(request, CAN_VIEW_INVOICES, store_id)
        async with read_scope(auth.ctx.sessions) as session:
            order = await find_invoice(session, auth.credential, invoice_id)
            return answer(invoice_json(order, auth.ctx.settings.public_url))

    return await guarded(work)


async def _methods(request: Request, store_id: str | None, invoice_id: str) -> Response:
    async def work() -> Response:
        auth = await authenticated(request, CAN_VIEW_INVOICES, store_id)
        async with read_scope(auth.ctx.sessions) as session:
            order = await find_invoice(session, auth.credential, invoice_id)
            payments = await queries.order_payments(session, order.id)
            return answer(invoice_payment_methods_json(order, payments, auth.ctx.registry))

    return await guarded(work)


async def _mark(request: Request, store_id: str | None, invoice_id: str) -> Response:
    async def work() -> Response:
        auth = await authenticated(request, CAN_MODIFY_INVOICES, store_id)
        status = (await json_body(request)).get("status")
        if not isinstance(status, str):
            raise invalid("status", "Invalid or Settled is expected")
        async with session_scope(auth.ctx.sessions) as session:
            order = await mark_invoice(
                session,
                auth.ctx.clock,
                order_context(request),
                auth.credential,
                invoice_id,
                status,
            )
            return answer(invoice_json(order, auth.ctx.settings.public_url))

    return await guarded(work)


@router.get(STORE)
async def store_invoices(request: Request, store_id: str) -> Response:
    return await _list(request, store_id)


@router.get(STORE + "/{invoice_id}")
async def store_invoice(request: Request, store_id: str, invoice_id: str) -> Response:
    return await _one(request, store_id, invoice_id)


@router.get(OWN + "/{invoice_id}")
async def own_invoice(request: Request, invoice_id: str) -> Response:
    return await _one(request, None, invoice_id)


@router.get(STORE + "/{invoice_id}/payment-methods")
async def store_invoice_methods(request: Request, store_id: str, invoice_id: str) -> Response:
    return await _methods(request, store_id, invoice_id)


@router.get(OWN + "/{invoice_id}/payment-methods")
async def own_invoice_methods(request: Request, invoice_id: str) -> Response:
    return await _methods(request, None, invoice_id)


@router.post(STORE + "/{invoice_id}/status")
async def store_invoice_status(request: Request, store_id: str, invoice_id: str) -> Response:
    return await _mark(request, store_id, invoice_id)


@router.post(OWN + "/{invoice_id}/status")
async def own_invoice_status(request: Request, invoice_id: str) -> Response:
    return await _mark(request, None, invoice_id)


@router.get("/i/{invoice_id}")
async def shopper_link(request: Request, invoice_id: str) -> Response:
    """Where a shop sends its customer back to an invoice: the order's cashier page."""
    ctx = await public_request(request)
    async with read_scope(ctx.sessions) as session:
        order = await queries.public_order(session, invoice_id)
    if order is None:
        raise NotFound("no such invoice")
    return RedirectResponse(cashier_url(ctx.settings.public_url, order.id), status_code=302)
