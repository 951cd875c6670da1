"""Public endpoints (no auth, per-IP limited, never banned): chains, order view, QR, signing key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from stablegate.api.context import GatewayContext
from stablegate.api.security import get_context, request_ip
from stablegate.cashier.qr import qr_png
from stablegate.db.engine import read_scope
from stablegate.errors import NotFound
from stablegate.models import Order
from stablegate.orders.schemas import ErrorResponse, PublicOrderOut
from stablegate.orders.view import payment_uri, public_order_view
from stablegate.watcher.status import chain_statuses

router = APIRouter(prefix="/api/v1/public", tags=["public"])

OrderIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 429)
}


async def public_guard(request: Request) -> GatewayContext:
    ctx = get_context(request)
    await ctx.limiter.check_public(request_ip(request, ctx))
    return ctx


async def _load_order(ctx: GatewayContext, order_id: str) -> Order:
    async with read_scope(ctx.sessions) as session:
        order = await session.scalar(select(Order).where(Order.id == order_id))
    if order is None:
        raise NotFound("order not found")
    return order


@router.get("/chains", responses=_ERRORS, summary="Chains and tokens this gateway accepts")
async def chains(request: Request) -> JSONResponse:
    ctx = await public_guard(request)
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
    responses=_ERRORS,
    summary="The cashier's view of an order",
)
async def public_order(request: Request, order_id: OrderIdPath) -> JSONResponse:
    ctx = await public_guard(request)
    order = await _load_order(ctx, order_id)
    view = public_order_view(order, ctx.registry, ctx.settings.public_url, ctx.clock.now_ms())
    return JSONResponse(view, headers={"Cache-Control": "no-store"})


@router.get(
    "/orders/{order_id}/qr.png",
    responses={200: {"content": {"image/png": {}}}, **_ERRORS},
    response_class=Response,
    summary="QR code: the deposit address, or the EIP-681 URI with format=eip681",
)
async def order_qr(
    request: Request,
    order_id: OrderIdPath,
    qr_format: Annotated[str, Query(alias="format", pattern="^(address|eip681)$")] = "address",
) -> Response:
    ctx = await public_guard(request)
    order = await _load_order(ctx, order_id)
    content = payment_uri(order) if qr_format == "eip681" else order.to_address
    return Response(
        qr_png(content),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400, immutable"},
    )


@router.get("/signing-key", responses=_ERRORS, summary="The gateway's webhook public key")
async def signing_key(request: Request) -> JSONResponse:
    ctx = await public_guard(request)
    return JSONResponse(
        {
            "keyId": ctx.signing_key.key_id,
            "algorithm": "ECDSA-P256-SHA256",
            "publicKeyPem": ctx.signing_key.public_pem,
        }
    )
