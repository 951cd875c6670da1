"""What every request of every router reads, built once per app from Settings (no module globals).

The app (:mod:`stablegate.api.app`) stores it as ``app.state.gateway``; a domain's own state
lives beside it in ``app.state`` and is read by that domain's dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from stablegate.auth.ratelimit import RateLimiter
from stablegate.auth.replay import ReplayStore
from stablegate.chain.evm.factory_check import FactoryChecks
from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.config import Settings
from stablegate.merchants.credential_cache import CredentialCache
from stablegate.merchants.key_use import KeyUseRecorder
from stablegate.secret_box import SecretBox


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # Set in each API process of ``--workers N`` (stablegate.api.processes): every process
    # writes its values to files there, and a scrape reads them all.
    multiprocess_dir: str | None = None

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
        # With several processes the one that scrapes has just set them: the most recent wins.
        self.chain_head = Gauge(
            "stablegate_chain_head",
            "Latest block seen",
            ["chain"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.chain_final = Gauge(
            "stablegate_chain_final",
            "Highest final block",
            ["chain"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.chain_lag = Gauge(
            "stablegate_chain_lag_blocks",
            "Head minus cursor",
            ["chain"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.chain_watcher_alive = Gauge(
            "stablegate_chain_watcher_alive",
            "1 while a watcher holds the lease",
            ["chain"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.reconcile_mismatches = Gauge(
            "stablegate_reconcile_mismatches",
            "Deposit addresses whose balance differs from the records",
            ["chain"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.auth_failures = Counter(
            "stablegate_auth_failures",
            "Failed authentications by code",
            ["code"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text of this process, or of every API process sharing the directory
        (counters summed)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


@dataclass(kw_only=True)
class WebContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secret_box: SecretBox
    registry: ChainRegistry
    replay: ReplayStore
    limiter: RateLimiter
    redis: Redis | None
    metrics: Metrics
    # Chains whose deposit factory disagrees with the chains file take no orders.
    factory_checks: FactoryChecks = field(default_factory=FactoryChecks)
    # When each API key was last used, written at most once a minute per key.
    key_use: KeyUseRecorder = field(default_factory=KeyUseRecorder)
    # Signed-API keys this process loaded, checked against the credential epoch per request.
    credential_cache: CredentialCache = field(init=False)

    def __post_init__(self) -> None:
        self.credential_cache = CredentialCache(self.secret_box)


def get_context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.gateway
    return ctx
