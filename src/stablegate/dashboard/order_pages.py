"""The Orders pages: the filtered, paginated list, one order with its payments and webhook
deliveries, its live status (JSON the page polls), the CSV export and the Cancel button.

Every statement is scoped to the signed-in user's merchant: orders through
:func:`stablegate.orders.queries.readable_orders` (via :mod:`stablegate.dashboard.order_search`
and :func:`stablegate.orders.service.get_order`), events and deliveries through
:mod:`stablegate.webhooks.queries`. Another merchant's order id is "not found", like an unknown
one. Cancelling uses the API's own rule (:func:`stablegate.orders.service.cancel_order`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import Chain, ChainRegistry
from stablegate.dashboard.errors import CsrfRefused
from stablegate.dashboard.i18n import MESSAGES
from stablegate.dashboard.order_export import csv_chunks, export_name
from stablegate.dashboard.order_search import (
    OrderFilterError,
    OrderFilters,
    order_page,
    parse_filters,
    token_symbols,
)
from stablegate.dashboard.pages import PREFIX, Page, read_form, shown_time
from stablegate.dashboard.sessions import Viewer
from stablegate.db.engine import session_scope
from stablegate.errors import Conflict, GatewayError, NotFound
from stablegate.models import Order, Payment, WebhookDelivery, WebhookEvent
from stablegate.models.order import OrderException, OrderStatus
from stablegate.money import format_amount
from stablegate.orders import queries
from stablegate.orders.context import OrderContext
from stablegate.orders.payment_request import cashier_url
from stablegate.orders.service import cancel_order, get_order
from stablegate.orders.view import payment_amount
from stablegate.web.i18n import Translator
from stablegate.webhooks.queries import readable_deliveries, readable_events

router = APIRouter()

ORDERS = f"{PREFIX}/orders"
# The gateway's ids are URL-safe tokens; anything else is no order of anyone's (and never
# reaches the database, where a NUL would fail in the driver).
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DELIVERIES = 200  # per order page: the newest attempts
SHORT_BODY = 120


def order_href(order_id: str) -> str:
    return f"{ORDERS}/{quote(order_id, safe='')}"


def _query(params: dict[str, str]) -> str:
    return "?" + urlencode(params) if params else ""


@dataclass(frozen=True)
class Formats:
    """How the templates show chains, amounts and statuses, in the page's language."""

    registry: ChainRegistry
    t: Translator

    def chain(self, chain_id: int) -> str:
        chain = self.registry.get(chain_id)
        return chain.name if chain else self.t("orders_unknown_chain", id=chain_id)

    def amount(self, units: int, decimals: int) -> str:
        return format_amount(units, decimals)

    def status(self, status: str) -> str:
        return self.t(f"orders_status_{status}")

    def word(self, kind: str, value: str) -> str:
        """A stored value's name (a payment's kind or status, an event's status, a delivery's
        outcome); the value itself for one this version has no name for."""
        key = f"orders_{kind}_{value}"
        return self.t(key) if key in MESSAGES["en"] else str(value)

    def exceptions(self, exceptions: list[str] | None) -> str:
        if not exceptions:
            return self.t("orders_no_exceptions")
        return ", ".join(self.t(f"orders_exception_{e}") for e in sorted(exceptions))


# -- the list ------------------------------------------------------------------------------------


@router.get(ORDERS, include_in_schema=False)
async def orders_page(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    params = dict(request.query_params)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            filters = parse_filters(params, web.registry)
            found = await order_page(
                session,
                viewer.merchant_id,
                filters,
                after=params.get("after") or None,
                before=params.get("before") or None,
            )
        except OrderFilterError as exc:
            return _list(page, viewer, params, OrderFilters(), [], status=400, error=exc)
    keep = filters.params()
    return _list(
        page,
        viewer,
        params,
        filters,
        found.orders,
        newer=ORDERS + _query({**keep, "before": found.newer}) if found.newer else None,
        older=ORDERS + _query({**keep, "after": found.older}) if found.older else None,
        first=ORDERS + _query(keep) if params.get("after") or params.get("before") else None,
    )


def _list(
    page: Page,
    viewer: Viewer,
    params: dict[str, str],
    filters: OrderFilters,
    orders: list[Order],
    *,
    status: int = 200,
    error: GatewayError | None = None,
    newer: str | None = None,
    older: str | None = None,
    first: str | None = None,
) -> Response:
    registry = page.ctx.web.registry
    return page.render(
        "orders.html",
        status=status,
        viewer=viewer,
        current="orders",
        error=page.t(f"orders_error_{error.code}") if error else None,
        typed={name: params.get(name, "")[:200] for name in _FORM_FIELDS},
        filtered=filters.active,
        orders=orders,
        fmt=Formats(registry, page.t),
        order_href=order_href,
        statuses=[s.value for s in OrderStatus],
        exceptions=[e.value for e in OrderException],
        chains=[(c.id, c.name) for c in registry],
        tokens=token_symbols(registry),
        csv_href=f"{ORDERS}.csv" + _query(filters.params()),
        newer=newer,
        older=older,
        first=first,
    )


_FORM_FIELDS = ("q", "status", "exception", "chain", "token", "from", "to")


# -- the export ----------------------------------------------------------------------------------


@router.get(ORDERS + ".csv", include_in_schema=False)
async def orders_csv(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            filters = parse_filters(dict(request.query_params), web.registry)
        except OrderFilterError as exc:
            return _list(
                page, viewer, dict(request.query_params), OrderFilters(), [], status=400, error=exc
            )
    # The viewer is checked, the session closed: the rows are read batch by batch, each in
    # its own short transaction, while the client downloads.
    name = export_name(web.clock.now_ms())
    return StreamingResponse(
        csv_chunks(web.sessions, viewer.merchant_id, filters),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- one order -----------------------------------------------------------------------------------


async def _mine(session: AsyncSession, viewer: Viewer, order_id: str) -> Order:
    if not _ORDER_ID.fullmatch(order_id):
        raise NotFound("order not found")
    return await get_order(session, viewer.merchant_id, order_id=order_id)


def live_view(order: Order, chain: Chain | None, fmt: Formats, payments: int) -> dict[str, Any]:
    """What the order page updates without a reload (the /live answer, and the page's first
    values, so both always agree)."""
    d = order.decimals
    if order.complete_time_ms is not None:
        completed = shown_time(order.complete_time_ms)[1]
    elif order.status in (OrderStatus.PENDING, OrderStatus.CONFIRMING):
        completed = fmt.t("orders_not_yet")
    else:
        completed = fmt.t("orders_not_completed")
    return {
        "status": str(order.status),
        "statusText": fmt.status(str(order.status)),
        "exceptions": sorted(order.exceptions or []),
        "exceptionsText": fmt.exceptions(order.exceptions),
        "paid": f"{format_amount(order.paid_amount, d)} {order.symbol}",
        "pending": f"{format_amount(order.pending_amount, d)} {order.symbol}",
        "confirmations": _confirmations(order, chain, fmt),
        "completed": completed,
        "payments": payments,
        "cancellable": _cancellable(order),
    }


def _confirmations(order: Order, chain: Chain | None, fmt: Formats) -> str:
    """The newest payment's confirmations while the order waits for them; "final" once it
    completed on a final payment (the watcher stops counting then)."""
    if order.status == OrderStatus.COMPLETED and order.tx_id is not None:
        return fmt.t("orders_confirmations_final")
    required = chain.confirmations if chain else 0
    return fmt.t("orders_confirmations_of", count=order.confirmations, required=required)


def _cancellable(order: Order) -> bool:
    """What cancel_order accepts (it decides; this only hides a button that would fail)."""
    return (
        order.status == OrderStatus.PENDING
        and order.paid_amount == 0
        and order.pending_amount == 0
        and order.tx_id is None
    )


@dataclass(frozen=True)
class ShownPayment:
    payment: Payment
    amount: str
    explorer: str | None


@dataclass(frozen=True)
class ShownEvent:
    event: WebhookEvent
    deliveries: list[WebhookDelivery]


async def _order_parts(
    session: AsyncSession, viewer: Viewer, order: Order, chain: Chain | None
) -> tuple[list[ShownPayment], list[ShownEvent]]:
    payments = []
    for payment in await queries.order_payments(session, order.id):
        shown = payment_amount(payment, order, chain)
        amount = f"{shown.amount} {shown.symbol}" if shown.symbol else shown.amount
        explorer = chain.tx_url(payment.tx_hash) if chain else None
        payments.append(ShownPayment(payment, amount, explorer))
    events = list(
        (
            await session.scalars(
                readable_events(viewer.merchant_id)
                .where(WebhookEvent.order_id == order.id)
                .order_by(WebhookEvent.sequence)
            )
        ).all()
    )
    by_event: dict[str, list[WebhookDelivery]] = {}
    if events:
        rows = await session.execute(
            readable_deliveries(viewer.merchant_id)
            .where(WebhookDelivery.event_id.in_([e.id for e in events]))
            .order_by(WebhookDelivery.attempted_at_ms.desc(), WebhookDelivery.id.desc())
            .limit(MAX_DELIVERIES)
        )
        for delivery, _event in rows.all():
            by_event.setdefault(delivery.event_id, []).append(delivery)
    shown_events = [
        ShownEvent(e, sorted(by_event.get(e.id, []), key=lambda d: (d.attempt, d.id)))
        for e in events
    ]
    return payments, shown_events


async def _order_page(
    page: Page,
    viewer: Viewer,
    session: AsyncSession,
    order: Order,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    web = page.ctx.web
    chain = web.registry.get(order.chain_id)
    fmt = Formats(web.registry, page.t)
    payments, events = await _order_parts(session, viewer, order, chain)
    metadata = None
    if order.metadata_json is not None:
        metadata = json.dumps(order.metadata_json, indent=2, ensure_ascii=False, sort_keys=True)
    return page.render(
        "order.html",
        status=status,
        viewer=viewer,
        current="orders",
        order=order,
        chain=chain,
        fmt=fmt,
        live=live_view(order, chain, fmt, len(payments)),
        order_url=order_href(order.id),
        live_url=order_href(order.id) + "/live",
        cancel_url=order_href(order.id) + "/cancel",
        cashier=cashier_url(web.settings.public_url, order.id),
        payments=payments,
        events=events,
        metadata=metadata,
        short_body=SHORT_BODY,
        notice=notice,
        error=error,
    )


@router.get(ORDERS + "/{order_id}", include_in_schema=False)
async def order_detail(request: Request, order_id: str, cancelled: str = "") -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            order = await _mine(session, viewer, order_id)
        except NotFound as exc:
            return page.refusal(exc, viewer)
        notice = page.t("orders_cancelled_notice") if cancelled else None
        return await _order_page(page, viewer, session, order, notice=notice)


@router.get(ORDERS + "/{order_id}/live", include_in_schema=False)
async def order_live(request: Request, order_id: str) -> Response:
    """The order page's poll: JSON, never cached, for the signed-in merchant's order only."""
    page = Page.of(request)
    web = page.ctx.web
    headers = {"Cache-Control": "no-store", "Vary": "Cookie"}
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return JSONResponse({"error": "signed_out"}, status_code=401, headers=headers)
        try:
            order = await _mine(session, viewer, order_id)
        except NotFound:
            return JSONResponse({"error": "not_found"}, status_code=404, headers=headers)
        payments = len(await queries.order_payments(session, order.id))
        view = live_view(
            order, web.registry.get(order.chain_id), Formats(web.registry, page.t), payments
        )
    return JSONResponse(view, headers=headers)


@router.post(ORDERS + "/{order_id}/cancel", include_in_schema=False)
async def cancel(request: Request, order_id: str) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    context: OrderContext = request.app.state.order_context
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
            await _mine(session, viewer, order_id)
            # Refused (409) before it changes anything: the order page then says why.
            await cancel_order(
                session,
                web.clock,
                context,
                merchant_id=viewer.merchant_id,
                order_id=order_id,
                order_no=None,
            )
        except (CsrfRefused, NotFound) as exc:
            return page.refusal(exc, viewer)
        except Conflict as exc:
            order = await _mine(session, viewer, order_id)
            error = page.t(f"orders_error_{exc.code}")
            return await _order_page(page, viewer, session, order, status=409, error=error)
    return page.redirect(order_href(order_id) + "?cancelled=1")
