"""The cashier's payment-method picker: what the page shows while the customer has a choice,
and the POST that makes it.

The POST changes where money is to be sent, so only the cashier page itself may make it: the
browser's ``Sec-Fetch-Site`` must be ``same-origin`` (or, from a browser that sends none, its
``Origin`` this gateway's). The page sets no cookie, so there is no session for another site to
ride on: the order's unguessable id is what lets anyone choose, and the origin check stops a page
elsewhere from making a customer's browser choose for them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import structlog
from fastapi import Request

from stablegate.cashier.checkout import fiat_text
from stablegate.cashier.method_picker import app_method_picker
from stablegate.chain.registry import ChainRegistry
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError
from stablegate.models import Order
from stablegate.orders.endpoints import order_context
from stablegate.orders.state import OrderStatus
from stablegate.web.context import WebContext
from stablegate.web.i18n import Translator
from stablegate.web.security import read_body

# An order that ended while the customer was still to choose.
_ENDED = (OrderStatus.EXPIRED, OrderStatus.CANCELLED)

log = structlog.get_logger("stablegate.cashier")

MAX_FORM_BYTES = 1024
# A refusal's code -> the message the customer reads (cashier.i18n), and its status.
_REFUSALS: dict[str, str] = {
    "method_already_chosen": "choice_already_made",
    "method_not_offered": "choice_not_offered",
    "order_not_pending": "choice_closed",
    "order_expired": "choice_closed",
    "order_has_payments": "choice_paid",
    "rate_unavailable": "choice_unavailable",
    "payout_address_missing": "choice_unavailable",
    "unsupported_token": "choice_not_offered",
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, public_url: str) -> bool:
    """Did the cashier page itself send this POST? A browser's ``Sec-Fetch-Site`` says so
    (the page's no-referrer policy makes browsers send ``Origin: null`` even to their own
    origin); without it, the ``Origin`` must be the gateway's public URL or the host the request
    was sent to."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return False
    return origin.lower() in {_origin(public_url), _origin(str(request.base_url))}


async def choose_from_form(
    request: Request, ctx: WebContext, order_id: str
) -> tuple[str, int] | None:
    """Make the customer's choice; None when made (or made before, the same), else the
    message key and status of the refusal."""
    if not same_origin(request, ctx.settings.public_url):
        return "choice_cross_origin", 403
    try:
        body = await read_body(request, MAX_FORM_BYTES)
    except GatewayError as exc:
        return "choice_not_offered", exc.status
    try:
        values = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4).get("method") or []
    except ValueError:  # more fields than the form has
        values = []
    if len(values) != 1 or not values[0].strip():
        return "choice_not_offered", 400
    picker = app_method_picker(request)
    try:
        async with session_scope(ctx.sessions) as session:
            order = await picker.choose(
                session, ctx.clock, order_context(request), order_id, values[0]
            )
    except GatewayError as exc:
        if exc.status == 404:
            return "not_found_text", 404
        log.info("method_choice_refused", order_id=order_id, code=exc.code)
        return _REFUSALS.get(exc.code, "choice_unavailable"), exc.status
    log.info("method_chosen", order_id=order_id, chain_id=order.chain_id, symbol=order.symbol)
    return None


def choice_context(
    t: Translator, view: dict[str, Any], order: Order, registry: ChainRegistry, now_ms: int
) -> dict[str, Any]:
    """The picker's part of the page: its choices (token and network names, the amount when
    known) and whether they can still be made."""
    methods = view.get("paymentMethods")
    if not methods:
        return {"choices": None}
    open_ = order.status == OrderStatus.PENDING and now_ms < order.expire_time_ms
    choices = [
        {
            "id": method["id"],
            "symbol": method["symbol"],
            "network": method["chainName"],
            "amount": method["amount"],
            "label": t("choice_label", symbol=method["symbol"], network=method["chainName"]),
        }
        for method in methods
    ]
    fiat, currency = view.get("fiatAmount"), view.get("currency")
    return {
        "choices": choices,
        "choice_fiat": t("choose_fiat", fiat=fiat_text(fiat, currency), currency=currency)
        if fiat and currency
        else "",
        "choices_open": open_,
        "choice_action": f"/cashier/{order.id}/method?{urlencode({'lang': t.language})}",
        "heading": t("choose_heading"),
        **({"status_text": t("status_choosing")} if open_ else {}),
        # "Do not send funds to this address" when no address was ever shown: nothing to say.
        **({"state_text": ""} if view["status"] in _ENDED else {}),
    }
