"""Everything a request needs, built once per app from Settings (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from stablegate.auth.ratelimit import RateLimiter
from stablegate.auth.replay import ReplayStore
from stablegate.cashier.live import LiveOrders
from stablegate.cashier.stream_slots import StreamSlots
from stablegate.chain.evm.factory_check import FactoryChecks
from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.config import Settings
from stablegate.merchants.secrets import SecretBox
from stablegate.orders.service import OrderContext
from stablegate.webhooks.signing_key import GatewaySigningKey


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "stablegate_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "stablegate_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
        )
        self.orders_created = Counter(
            "stablegate_orders_created", "Orders created", ["chain"], registry=self.registry
        )
        # Chain gauges are refreshed from the database at scrape time (any process may watch).
        self.chain_head = Gauge(
            "stablegate_chain_head", "Latest block seen", ["chain"], registry=self.registry
        )
        self.chain_final = Gauge(
            "stablegate_chain_final", "Highest final block", ["chain"], registry=self.registry
        )
        self.chain_lag = Gauge(
            "stablegate_chain_lag_blocks", "Head minus cursor", ["chain"], registry=self.registry
        )
        self.chain_watcher_alive = Gauge(
            "stablegate_chain_watcher_alive",
            "1 while a watcher holds the lease",
            ["chain"],
            registry=self.registry,
        )
        self.reconcile_mismatches = Gauge(
            "stablegate_reconcile_mismatches",
            "Deposit addresses whose balance differs from the records",
            ["chain"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "stablegate_auth_failures",
            "Failed authentications by code",
            ["code"],
            registry=self.registry,
        )


@dataclass
class GatewayContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secret_box: SecretBox
    registry: ChainRegistry
    replay: ReplayStore
    limiter: RateLimiter
    signing_key: GatewaySigningKey
    redis: Redis | None
    metrics: Metrics
    stream_slots: StreamSlots
    live_orders: LiveOrders
    # Chains whose deposit factory disagrees with the chains file take no orders.
    factory_checks: FactoryChecks = field(default_factory=FactoryChecks)

    @property
    def orders(self) -> OrderContext:
        return OrderContext(
            registry=self.registry,
            public_url=self.settings.public_url,
            max_order_amount=self.settings.max_order_amount,
        )
