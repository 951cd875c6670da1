"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from stablegate.api.context import GatewayContext
from stablegate.db.engine import read_scope
from stablegate.errors import AuthError, Forbidden
from stablegate.watcher.status import chain_statuses
from stablegate.web.context import get_context

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: database (and Redis when configured) reachable")
async def readyz(request: Request) -> JSONResponse:
    ctx = get_context(request)
    checks: dict[str, str] = {}
    try:
        async with ctx.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver failure means "not ready", never a 500
        checks["database"] = f"error: {type(exc).__name__}"
    if ctx.redis is not None:
        try:
            await ctx.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics (bearer STABLEGATE_METRICS_TOKEN)")
async def metrics(request: Request) -> Response:
    ctx: GatewayContext = request.app.state.gateway
    token = ctx.settings.metrics_token
    if token is None:
        raise Forbidden("metrics are off: set STABLEGATE_METRICS_TOKEN", code="metrics_disabled")
    header = request.headers.get("authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(header.encode(), expected.encode()):
        raise AuthError("a valid bearer token is required", code="invalid_metrics_token")
    async with read_scope(ctx.sessions) as session:
        statuses = await chain_statuses(session, ctx.registry, ctx.clock.now_ms())
        await ctx.rate_gauges.refresh(session, ctx.settings, ctx.clock.now_ms())
    m = ctx.metrics
    for row in statuses:
        chain = str(row["chainId"])
        if row["head"] is not None:
            m.chain_head.labels(chain).set(row["head"])
            m.chain_final.labels(chain).set(row["final"])
            m.chain_lag.labels(chain).set(row["lag"])
            m.reconcile_mismatches.labels(chain).set(row["reconcileMismatches"])
        m.chain_watcher_alive.labels(chain).set(0 if row["watcher"] == "none" else 1)
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
