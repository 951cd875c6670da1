"""The cashier page (docs/DESIGN.md §9), its static files, its live events and the dev-chain payer.

- ``GET /cashier/{orderId}``: server-rendered HTML that shows everything needed to pay without
  JavaScript (amount, token, network, deposit address, QR image, status, expiry as text); the
  script adds copy buttons, a countdown and live status (server-sent events, polling fallback).
- ``GET /api/v1/public/orders/{orderId}/events``: the public order view as server-sent events,
  fed by one shared poll per process; streams open at once are capped per IP and per process.
- ``POST /cashier/{orderId}/method``: the customer picks one of the payment methods an invoice
  offers (form field ``method``); same-origin only, then back to the page.
- ``POST /cashier/{orderId}/dev-pay``: on the dev chain only (chain 31337 marked ``testnet``),
  pays what the order still lacks from anvil's default account #2, then redirects back.
- ``GET /cashier/static/{name}``: the page's CSS and script (the CSP allows no inline code).

Every HTML answer carries a strict Content-Security-Policy; merchant text is escaped by Jinja's
autoescape. Public routes are limited per IP like the other public endpoints.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from stablegate.cashier.checkout import (
    checkout_state,
    fiat_text,
    logo_origin,
    logo_source,
    received_units,
    support_link,
    to_units,
    wrong_payments,
)
from stablegate.cashier.events import EventStreamResponse, order_event_stream
from stablegate.cashier.i18n import (
    LANGUAGES,
    negotiate_language,
    script_messages,
    translator,
)
from stablegate.cashier.live import app_live_orders
from stablegate.cashier.method_picker import (
    MethodPicker,
    app_method_picker,
    cashier_order_view,
)
from stablegate.cashier.picker_form import choice_context, choose_from_form
from stablegate.cashier.public_api import (
    ERRORS,
    OrderIdPath,
    find_public_order,
    find_public_view,
)
from stablegate.cashier.stream_slots import app_stream_slots
from stablegate.cashier.wallet_links import wallet_links
from stablegate.chain.anvil import ANVIL_CHAIN_ID
from stablegate.chain.dev_pay import DevPayFailed, pay_from_dev_account
from stablegate.chain.registry import Chain
from stablegate.errors import NotFound, RateLimited
from stablegate.models import Order
from stablegate.money import format_amount
from stablegate.orders.payment_request import QR_FORMATS, qr_path
from stablegate.orders.state import TERMINAL_STATUSES, OrderStatus
from stablegate.orders.view import PublicOrderParts
from stablegate.web.context import WebContext
from stablegate.web.i18n import Translator
from stablegate.web.pages import (
    content_security_policy,
    load_static,
    page_headers,
    page_templates,
)
from stablegate.web.security import public_request, request_ip

log = structlog.get_logger("stablegate.cashier")

router = APIRouter()

_NOTICES = ("dev_pay_sent", "dev_pay_failed")
RETURN_STATES = ("late", "expired_partial")
_STATUSES = frozenset(status.value for status in OrderStatus)

_templates = page_templates("stablegate.cashier")


_STATIC = load_static("stablegate.cashier", ("cashier.css", "cashier.js", "wallet.js"))


def static_url(name: str) -> str:
    # Versioned by content, so the files can be cached for good.
    return f"/cashier/static/{name}?v={_STATIC[name].version}"


def dev_pay_enabled(chain: Chain | None) -> bool:
    """Only on the local dev chain: chain id 31337, marked as a testnet, with an RPC endpoint."""
    return chain is not None and chain.id == ANVIL_CHAIN_ID and chain.testnet and chain.has_rpc


def safe_redirect(url: str | None) -> str | None:
    """The merchant's redirect URL when it is a plain http(s) URL, else nothing."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def format_time_left(ms: int) -> str:
    seconds = max(ms, 0) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _page_headers(language: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return page_headers({"Content-Language": language, "Vary": "Accept-Language", **(extra or {})})


def _render(
    template: str,
    language: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    t = translator(language)
    html = _templates.get_template(template).render(
        t=t, lang=language, static_url=static_url, **context
    )
    return HTMLResponse(html, status_code=status_code, headers=_page_headers(language, headers))


def _languages(order_id: str, qr_mode: str, current: str) -> list[dict[str, Any]]:
    links = []
    for code, name in LANGUAGES.items():
        query = {"lang": code} | ({"qr": qr_mode} if qr_mode != "address" else {})
        links.append(
            {
                "code": code,
                "name": name,
                "href": f"/cashier/{order_id}?{urlencode(query)}",
                "current": code == current,
            }
        )
    return links


def _message_page(
    language: str, key: str, status: int, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return _render(
        "message.html", language, status, headers, title_key=f"{key}_title", text_key=f"{key}_text"
    )


def _status_text(t: Translator, status: str) -> str:
    return t(f"status_{status}") if status in _STATUSES else status


def address_groups(address: str) -> list[str]:
    """``0x1234``, then groups of four: the address breaks between groups, never inside one."""
    return [address[:6]] + [address[i : i + 4] for i in range(6, len(address), 4)]


def _state_text(t: Translator, view: dict[str, Any], state: str) -> str:
    d = int(view["decimals"])
    amount, received = to_units(view["amount"], d), received_units(view)
    fields = {
        "amount": view["amount"],
        "symbol": view["symbol"],
        "received": format_amount(received, d),
        "over": format_amount(max(received - amount, 0), d),
    }
    if state in ("paid_over", "late", "expired_partial"):
        return t(f"state_{state}", **fields)
    return t("do_not_pay") if state in ("expired", "cancelled") else ""


def _wrong_token_lines(t: Translator, view: dict[str, Any]) -> list[str]:
    lines = []
    for payment in wrong_payments(view):
        if payment.get("symbol"):
            lines.append(
                t(
                    "wrong_token_line",
                    amount=payment["amount"],
                    symbol=payment["symbol"],
                    expected=view["symbol"],
                )
            )
        else:
            lines.append(
                t(
                    "wrong_token_unknown",
                    amount=payment["amount"],
                    token=payment["tokenAddress"],
                    expected=view["symbol"],
                )
            )
    return lines


def _fiat_price(t: Translator, view: dict[str, Any]) -> str:
    """``72.00 CNY = 10 USDT at 7.2`` for an order priced in fiat (the rate locked at its
    creation), else nothing."""
    currency = view.get("currency")
    if not currency or view.get("fiatAmount") is None or view.get("rate") is None:
        return ""
    return t(
        "fiat_price",
        fiat=fiat_text(view["fiatAmount"], currency),
        currency=currency,
        amount=view["amount"],
        symbol=view["symbol"],
        rate=view["rate"],
    )


def _time_text(ms: int | None) -> tuple[str, str]:
    if ms is None:
        return "", ""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y-%m-%d %H:%M UTC")


def cashier_context(
    ctx: WebContext,
    order: Order,
    parts: PublicOrderParts,
    t: Translator,
    qr_mode: str,
    notice: str | None,
    picker: MethodPicker,
) -> dict[str, Any]:
    """Everything the cashier template shows, computed once here (the template only lays out).
    While the customer has a payment method to choose, the view has no address (""), so
    nothing below can show one."""
    now_ms = ctx.clock.now_ms()
    view = cashier_order_view(order, ctx.registry, ctx.settings.public_url, now_ms, parts, picker)
    choosing = "paymentMethods" in view
    chain = ctx.registry.get(order.chain_id)
    chain_name = chain.name if chain else view["network"]
    state = checkout_state(view)
    received = received_units(view)
    due = view["dueAmount"]
    received_text = (
        t(
            "received",
            paid=format_amount(received, order.decimals),
            amount=view["amount"],
            symbol=order.symbol,
        )
        if received > 0
        else ""
    )
    confirmations_text = ""
    if order.status == OrderStatus.CONFIRMING:
        required = view["requiredConfirmations"]
        count = order.confirmations
        confirmations_text = (
            t("confirmations_of", count=count, required=required)
            if count < required
            else t("confirmations", count=count)
        )
    expire_iso, expire_text = _time_text(order.expire_time_ms)
    paid_iso, paid_text = _time_text(view["completeTime"])
    fields = {"address": view["toAddress"], "amount": due, "symbol": order.symbol}
    qr_modes = [
        {
            "mode": mode,
            "label": t(f"qr_{mode}"),
            "href": f"/cashier/{order.id}?{urlencode({'lang': t.language, 'qr': mode})}",
            # The EIP-681 code asks for the amount still due, so it is drawn for this view.
            "src": qr_path(order.id, mode) if mode == "address" else view["paymentQrDataUrl"],
            "alt": t(f"qr_alt_{mode}", **fields),
            "hint": t(f"qr_hint_{mode}"),
            "current": mode == qr_mode,
        }
        for mode in QR_FORMATS
    ]
    merchant = view["merchant"]
    page_url = f"{ctx.settings.public_url}/cashier/{order.id}?{urlencode({'lang': t.language})}"
    instruction_key = "send_remaining" if state == "partial" else "send_exactly"
    return {
        "view": view,
        "order_id": order.id,
        "order_status": order.status,
        "state": state,
        "heading": t("heading_paid")
        if state in ("paid", "paid_over")
        else t("heading", symbol=view["symbol"]),
        "status_text": _status_text(t, order.status),
        "state_text": _state_text(t, view, state),
        "instruction": t(
            instruction_key, amount=due, due=due, symbol=view["symbol"], network=chain_name
        ),
        "wrong_token_lines": _wrong_token_lines(t, view),
        "fiat_price": _fiat_price(t, view),
        "merchant_name": merchant.get("name") or "",
        "logo": logo_source(merchant.get("logoUrl")),
        "support": support_link(merchant.get("supportContact")),
        "show_support": state in ("late", "expired_partial", "paid_over")
        or bool(wrong_payments(view)),
        "terminal": order.status in TERMINAL_STATUSES,
        "chain_name": chain_name,
        "address_groups": address_groups(view["toAddress"]),
        "received_text": received_text,
        "confirmations_text": confirmations_text,
        # Kept after a late or partial payment too: the customer settles it with the merchant.
        "redirect_url": safe_redirect(
            view["redirectUrl"] or (order.redirect_url if state in RETURN_STATES else None)
        ),
        "expire_iso": expire_iso,
        "expire_text": expire_text,
        "paid_iso": paid_iso,
        "paid_text": paid_text,
        "time_left": format_time_left(order.expire_time_ms - now_ms),
        "qr": next(mode for mode in qr_modes if mode["current"]),
        "qr_modes": qr_modes,
        "wallet_links": wallet_links(page_url),
        "dev_pay": dev_pay_enabled(chain)
        and order.status == OrderStatus.PENDING
        and due != "0"
        and not choosing,
        "dev_pay_action": f"/cashier/{order.id}/dev-pay?{urlencode({'lang': t.language})}",
        "notice": t(notice) if notice in _NOTICES else "",
        "notice_failed": notice == "dev_pay_failed",
        "languages": _languages(order.id, qr_mode, t.language),
        "script_view": json.dumps(view, separators=(",", ":")),
        "script_messages": json.dumps(script_messages(t), ensure_ascii=False),
        "script_chain": json.dumps({"name": chain_name}, ensure_ascii=False),
        **choice_context(t, view, order, ctx.registry, now_ms),
    }


@router.get(
    "/cashier/{order_id}",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The cashier page"},
        404: {"content": {"text/html": {}}, "description": "Unknown order (an HTML page)"},
        429: {"content": {"text/html": {}}, "description": "Too many requests (an HTML page)"},
    },
    summary="The cashier page (HTML)",
    tags=["cashier"],
)
async def cashier_page(
    request: Request,
    order_id: str,
    lang: str | None = None,
    qr: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    language = negotiate_language(lang, request.headers.get("accept-language"))
    try:
        ctx = await public_request(request)
    except RateLimited as exc:
        return _message_page(language, "rate_limited", exc.status, exc.headers)
    found = await find_public_view(ctx, order_id)
    if found is None:
        return _message_page(language, "not_found", 404)
    order, parts = found
    qr_mode = qr if qr in QR_FORMATS else "address"
    t = translator(language)
    context = cashier_context(ctx, order, parts, t, qr_mode, notice, app_method_picker(request))
    # A merchant's https logo is the one image from elsewhere: its origin alone is allowed.
    origin = logo_origin(context["view"]["merchant"].get("logoUrl"))
    headers = {"Content-Security-Policy": content_security_policy(origin)} if origin else None
    return _render("cashier.html", language, headers=headers, **context)


@router.post("/cashier/{order_id}/dev-pay", include_in_schema=False)
async def dev_pay(request: Request, order_id: str, lang: str | None = None) -> Response:
    language = negotiate_language(lang, request.headers.get("accept-language"))
    try:
        ctx = await public_request(request)
    except RateLimited as exc:
        return _message_page(language, "rate_limited", exc.status, exc.headers)
    order = await find_public_order(ctx, order_id)
    chain = ctx.registry.get(order.chain_id) if order is not None else None
    if order is not None and app_method_picker(request).options(order):
        # No address is given out before the customer picks a payment method.
        query = urlencode({"lang": language})
        return RedirectResponse(f"/cashier/{order.id}?{query}", status_code=303)
    if order is None or chain is None or not dev_pay_enabled(chain):
        # Off the dev chain this route does not exist, as far as anyone can tell.
        return _message_page(language, "not_found", 404)
    due = order.amount - order.paid_amount - order.pending_amount
    notice = "dev_pay_sent"
    if order.status == OrderStatus.PENDING and due > 0:
        try:
            tx_hash = await pay_from_dev_account(
                chain, token=order.token_address, to=order.to_address, amount=due
            )
            log.info("dev_pay_sent", order_id=order.id, tx_hash=tx_hash)
        except DevPayFailed as exc:
            log.warning("dev_pay_failed", order_id=order.id, error=str(exc))
            notice = "dev_pay_failed"
    query = urlencode({"lang": language, "notice": notice})
    return RedirectResponse(f"/cashier/{order.id}?{query}", status_code=303)


@router.post("/cashier/{order_id}/method", include_in_schema=False)
async def choose_method(request: Request, order_id: str, lang: str | None = None) -> Response:
    language = negotiate_language(lang, request.headers.get("accept-language"))
    try:
        ctx = await public_request(request)
    except RateLimited as exc:
        return _message_page(language, "rate_limited", exc.status, exc.headers)
    refused = await choose_from_form(request, ctx, order_id)
    if refused is not None:
        key, status = refused
        return _render(
            "message.html",
            language,
            status,
            title_key="choice_refused_title",
            text_key=key,
            back_href=f"/cashier/{order_id}?{urlencode({'lang': language})}"
            if key != "not_found_text"
            else None,
        )
    return RedirectResponse(f"/cashier/{order_id}?{urlencode({'lang': language})}", status_code=303)


@router.get("/cashier/static/{name}", include_in_schema=False)
async def cashier_static(name: str) -> Response:
    static = _STATIC.get(name)
    if static is None:
        return Response(status_code=404)
    return Response(
        static.content,
        media_type=static.media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": static.version},
    )


@router.get(
    "/api/v1/public/orders/{order_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`event: order` with the public order view at once and whenever "
            "it changes; ends after a terminal status. 429 `too_many_streams` when the client's "
            "address or this server has too many streams open: poll the order instead.",
        },
        **ERRORS,
    },
    summary="Server-sent events with the cashier's view of an order",
    tags=["public"],
)
async def order_events(request: Request, order_id: OrderIdPath) -> StreamingResponse:
    ctx = await public_request(request)
    # Refused before any database work when too many streams are open (429 too_many_streams).
    slot = app_stream_slots(request).acquire(request_ip(request, ctx))
    try:
        found = await find_public_view(ctx, order_id)
    except BaseException:
        slot.release()
        raise
    if found is None:
        slot.release()
        raise NotFound("order not found")
    order, parts = found
    # Every poll offers the current view and the stream sends what differs from its last event,
    # so a change committed after this read still reaches it on the next poll.
    live_orders = app_live_orders(request)
    subscription = live_orders.subscribe(order_id)

    def close() -> None:
        live_orders.unsubscribe(subscription)
        slot.release()

    try:
        subscription.offer(
            cashier_order_view(
                order,
                ctx.registry,
                ctx.settings.public_url,
                ctx.clock.now_ms(),
                parts,
                app_method_picker(request),
            )
        )
    except BaseException:
        close()  # a failure before the stream starts must not keep its slot
        raise

    return EventStreamResponse(order_event_stream(subscription), on_close=close)
