"""The public JSON API (``/api/v1/public/...``): no authentication, limited per IP, never banned.

The chains this gateway accepts, the cashier's view of an order and its QR code, and the
gateway's webhook public key. The order's live status (server-sent events) is served beside the
cashier page (:mod:`stablegate.cashier.page`). Every public read of an order goes through
:func:`find_public_order` (the order alone) or :func:`find_public_view` (with what its view
shows beside it: payments, the merchant's branding, the chain's head).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from stablegate.cashier.method_picker import app_method_picker, cashier_order_out
from stablegate.db.engine import read_scope
from stablegate.errors import Conflict, NotFound
from stablegate.models import Order
from stablegate.orders import queries
from stablegate.orders.payment_request import due_amount, qr_content, qr_png
from stablegate.orders.schemas import PublicOrderOut
from stablegate.orders.view import PublicOrderParts, detached
from stablegate.watcher.status import chain_statuses
from stablegate.web.context import WebContext
from stablegate.web.errors import error_responses
from stablegate.web.security import public_request
from stablegate.webhooks.signing_key import app_signing_key

# Sent with json.dumps like every other answer.
router = APIRouter(prefix="/api/v1/public", tags=["public"], default_response_class=JSONResponse)

ORDER_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
OrderIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ORDER_ID_PATTERN)]
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ERRORS = error_responses(400, 404, 429)


async def find_public_order(ctx: WebContext, order_id: str) -> Order | None:
    """The order a customer's link names, or None (an id no order can have is not looked up)."""
    if not _ORDER_ID.fullmatch(order_id):
        return None
    async with read_scope(ctx.sessions) as session:
        return await queries.public_order(session, order_id)


async def find_public_view(ctx: WebContext, order_id: str) -> tuple[Order, PublicOrderParts] | None:
    """The order a customer's link names with the parts of its public view, or None; detached
    objects, as the live poll renders them."""
    if not _ORDER_ID.fullmatch(order_id):
        return None
    async with read_scope(ctx.sessions) as session:
        rows = (await queries.public_order_rows(session, [order_id])).get(order_id)
    return None if rows is None else detached(rows)


async def _require_order(ctx: WebContext, order_id: str) -> Order:
    order = await find_public_order(ctx, order_id)
    if order is None:
        raise NotFound("order not found")
    return order


@router.get("/chains", responses=ERRORS, summary="Chains and tokens this gateway accepts")
async def chains(request: Request) -> JSONResponse:
    ctx = await public_request(request)
    async with read_scope(ctx.sessions) as session:
        statuses = {
            row["chainId"]: row
            for row in await chain_statuses(session, ctx.registry, ctx.clock.now_ms())
        }
    items = [
        {
            "chainId": str(chain.id),
            "name": chain.name,
            "network": chain.network,
            "testnet": chain.testnet,
            "finality": {"tag": "finalized", "fallbackConfirmations": chain.confirmations},
            "head": statuses[chain.id]["head"],
            "finalizedBlock": statuses[chain.id]["final"],
            "lag": statuses[chain.id]["lag"],
            # Healthy: a live watcher that has seen the head recently.
            "healthy": statuses[chain.id]["watcher"] != "none"
            and statuses[chain.id]["headSeenAt"] is not None
            and ctx.clock.now_ms() - statuses[chain.id]["headSeenAt"]
            < max(60_000, int(chain.block_time * 20_000)),
            "tokens": [
                {"symbol": t.symbol, "address": t.address, "decimals": t.decimals}
                for t in chain.tokens
            ],
        }
        for chain in ctx.registry.with_rpc()
    ]
    return JSONResponse({"chains": items})


@router.get(
    "/orders/{order_id}",
    response_model=PublicOrderOut,
    responses=ERRORS,
    summary="The cashier's view of an order",
    response_model_exclude_unset=True,  # the price fields only on orders priced in fiat
)
async def public_order(
    request: Request, response: Response, order_id: OrderIdPath
) -> PublicOrderOut:
    ctx = await public_request(request)
    found = await find_public_view(ctx, order_id)
    if found is None:
        raise NotFound("order not found")
    order, parts = found
    response.headers["Cache-Control"] = "no-store"
    return cashier_order_out(
        order,
        ctx.registry,
        ctx.settings.public_url,
        ctx.clock.now_ms(),
        parts,
        app_method_picker(request),
    )


@router.get(
    "/orders/{order_id}/qr.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS, **error_responses(409)},
    response_class=Response,
    summary="QR code: the deposit address, or with format=eip681 the EIP-681 request for the "
    "amount still due (409 payment_method_not_chosen while the customer has a method to pick)",
)
async def order_qr(
    request: Request,
    order_id: OrderIdPath,
    qr_format: Annotated[str, Query(alias="format", pattern="^(address|eip681)$")] = "address",
    due: Annotated[
        str | None,
        Query(
            pattern="^[0-9]{1,80}$",
            description="The due amount (base units) the image is asked for, as in "
            "`paymentQrCode`; the image always shows the amount due now",
        ),
    ] = None,
) -> Response:
    ctx = await public_request(request)
    order = await _require_order(ctx, order_id)
    if app_method_picker(request).options(order):
        raise Conflict(
            "choose a payment method on the cashier page first", code="payment_method_not_chosen"
        )
    # The address never changes once chosen; the EIP-681 request changes with the amount due,
    # so only its image for the due amount the URL names may be cached.
    fixed = qr_format == "address" or (due is not None and int(due) == due_amount(order))
    return Response(
        qr_png(qr_content(order, qr_format)),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400, immutable" if fixed else "no-store"},
    )


@router.get("/signing-key", responses=ERRORS, summary="The gateway's webhook public key")
async def signing_key(request: Request) -> JSONResponse:
    await public_request(request)
    key = app_signing_key(request)
    return JSONResponse(
        {"keyId": key.key_id, "algorithm": "ECDSA-P256-SHA256", "publicKeyPem": key.public_pem}
    )
