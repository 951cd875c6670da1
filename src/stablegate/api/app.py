"""create_app(settings): the merchant API, public endpoints and cashier in one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from stablegate import __version__
from stablegate.admin import routes as admin_routes
from stablegate.api import health
from stablegate.api.context import GatewayContext
from stablegate.api.request_log import RequestLog
from stablegate.auth.ratelimit import MemoryRateLimitBackend, RateLimiter, RedisRateLimitBackend
from stablegate.auth.replay import RedisReplayStore, ReplayStore
from stablegate.auth.replay_db import DatabaseReplayStore
from stablegate.cashier import page as cashier_page
from stablegate.cashier import public_api
from stablegate.cashier.live import LiveOrders, database_views
from stablegate.cashier.stream_slots import StreamSlots
from stablegate.chain.registry import ChainRegistry, load_registry
from stablegate.clock import Clock, SystemClock
from stablegate.compat import integration_pages
from stablegate.compat.epay import epay_endpoints, epusdt_endpoints
from stablegate.compat.greenfield import authorize_pages as greenfield_authorize
from stablegate.compat.greenfield import invoice_endpoints as greenfield_invoices
from stablegate.compat.greenfield import store_endpoints as greenfield_stores
from stablegate.compat.greenfield import webhook_endpoints as greenfield_webhooks
from stablegate.compat.greenfield.method_choice import GreenfieldPicker
from stablegate.config import Settings
from stablegate.dashboard import routes as dashboard_routes
from stablegate.db.engine import make_engine, make_sessionmaker
from stablegate.migrations import upgrade
from stablegate.orders import endpoints as order_endpoints
from stablegate.orders.signed_insert import signed_orders_for
from stablegate.rates import endpoints as rate_endpoints
from stablegate.rates.board import RateBoard
from stablegate.rates.metrics import RateGauges
from stablegate.rates.service import Rates
from stablegate.reference import page as reference_page
from stablegate.secret_box import load_secret_box
from stablegate.web import errors
from stablegate.web.context import Metrics
from stablegate.webhooks import endpoints as webhook_endpoints
from stablegate.webhooks.signing_key import load_signing_key


def build_context(
    settings: Settings, *, clock: Clock | None = None, registry: ChainRegistry | None = None
) -> GatewayContext:
    clock = clock or SystemClock()
    registry = registry or load_registry(settings.chains_file)
    engine = make_engine(settings.effective_database_url)
    sessions = make_sessionmaker(engine)
    redis = None
    if settings.redis_url:
        # Blocking pool: under a burst, wait for a connection instead of failing the request.
        pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=256, timeout=5)
        redis = Redis.from_pool(pool)  # owns the pool: aclose() disconnects it
    replay: ReplayStore
    if redis is not None:
        replay = RedisReplayStore(redis)
        backend: MemoryRateLimitBackend | RedisRateLimitBackend = RedisRateLimitBackend(
            redis, "stablegate:rl:", clock
        )
    else:
        # In the database, SQLite too: nothing stops a second API process on the same file,
        # and a cache in one process's memory would let it accept the other's requests again.
        replay = DatabaseReplayStore(sessions, clock)
        backend = MemoryRateLimitBackend(clock)
    limiter = RateLimiter(
        backend,
        per_minute=settings.rate_limit_per_minute,
        unsigned_per_minute=settings.unsigned_reads_per_minute,
        failed_auth_per_minute=settings.failed_auth_per_minute,
        public_per_minute=settings.public_per_minute,
    )
    metrics = Metrics()
    return GatewayContext(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        secret_box=load_secret_box(settings),
        registry=registry,
        replay=replay,
        limiter=limiter,
        signing_key=load_signing_key(settings),
        redis=redis,
        metrics=metrics,
        stream_slots=StreamSlots(
            per_ip=settings.live_streams_per_ip, per_process=settings.live_streams_per_process
        ),
        live_orders=LiveOrders(
            *database_views(
                sessions, registry, settings.public_url, clock, GreenfieldPicker(registry)
            )
        ),
        rates=Rates(sessions, clock, settings),
        rate_gauges=RateGauges(metrics.registry),
        signed_orders=signed_orders_for(engine),
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    registry: ChainRegistry | None = None,
    migrate: bool | None = None,
) -> FastAPI:
    ctx = build_context(settings, clock=clock, registry=registry)
    run_migrations = settings.is_embedded if migrate is None else migrate

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await upgrade(ctx.engine)
        # Ask every chain's deposit factory now, so a bad chains file is logged at start-up.
        checks = ctx.factory_checks.start(ctx.registry.with_rpc())
        yield
        checks.cancel()
        await ctx.live_orders.stop()
        if ctx.signed_orders is not None:
            await ctx.signed_orders.close()
        await ctx.engine.dispose()
        if ctx.redis is not None:
            await ctx.redis.aclose()

    app = FastAPI(
        title="stablegate",
        version=__version__,
        description="Self-hosted, non-custodial stablecoin payment gateway (merchant API).",
        lifespan=lifespan,
        # /docs is our own page (stablegate.reference): Swagger UI loads from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = ctx
    # Each domain's own state, read by that domain's dependency (stablegate.web knows none).
    app.state.order_context = ctx.orders
    app.state.signing_key = ctx.signing_key
    app.state.stream_slots = ctx.stream_slots
    app.state.live_orders = ctx.live_orders
    # Invoices offering several payment methods: the cashier's picker (compat sits above it).
    app.state.method_picker = GreenfieldPicker(ctx.registry)
    app.state.rates = ctx.rates
    app.state.rate_board = RateBoard(ctx.rates, ctx.sessions, ctx.registry, ctx.clock)
    errors.install_error_handlers(app)
    app.include_router(order_endpoints.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(rate_endpoints.router)
    app.include_router(public_api.router)
    app.include_router(rate_endpoints.public_router)
    app.include_router(cashier_page.router)
    app.include_router(dashboard_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(epay_endpoints.router)
    app.include_router(integration_pages.router)
    app.include_router(epusdt_endpoints.router)
    app.include_router(greenfield_stores.router)
    app.include_router(greenfield_invoices.router)
    app.include_router(greenfield_authorize.router)
    app.include_router(greenfield_webhooks.router)
    app.include_router(health.router)
    app.include_router(reference_page.router)

    app.add_middleware(RequestLog, metrics=ctx.metrics)
    return app
