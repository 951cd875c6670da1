"""A real gateway for the SDK tests: create_app behind uvicorn (tests.support.LiveServer) on a
SQLite file, with a FakeClock that the SDK reads (``now_ms``) and its sleep hook advances.

The ``start_gateway`` fixture in tests/clients/conftest.py hands out :meth:`Gateways.start`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.fernet import Fernet
from stablegate_client import generate_key_pair
from tests.support import NOW_MS, PAYOUT, LiveServer, MerchantKeys

from stablegate.api.app import create_app
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import add_public_key, create_merchant
from stablegate.secret_box import load_secret_box

T = TypeVar("T")


def run_in_fresh_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs a coroutine on its own loop in a worker thread (this thread's loop stays untouched)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@dataclass
class Gateway:
    url: str
    clock: FakeClock
    settings: Settings
    keys: MerchantKeys
    payout: str

    def sleep(self, seconds: float) -> None:
        """The SDK's sleep hook: time passes for the gateway too."""
        self.clock.advance(seconds)

    def register_public_key(self) -> bytes:
        """Registers a new P-256 public key for the merchant; returns the private key PEM."""
        private_pem, public_pem = generate_key_pair()

        async def work() -> None:
            engine = make_engine(self.settings.effective_database_url)
            try:
                async with session_scope(make_sessionmaker(engine)) as session:
                    await add_public_key(
                        session, self.clock, api_key=self.keys.api_key, pem=public_pem
                    )
            finally:
                await engine.dispose()

        run_in_fresh_loop(work)
        return private_pem


class Gateways:
    """Starts gateways in a test's temporary directory; :meth:`close` stops them all."""

    def __init__(self, tmp_path: Path, default_chains: Path) -> None:
        self.tmp_path = tmp_path
        self.default_chains = default_chains
        self.stack = ExitStack()
        self.counter = itertools.count()

    def start(
        self,
        *,
        rate_limit_per_minute: int = 1000,
        chains: Path | None = None,
        payout: str = PAYOUT,
        chain_ids: tuple[int, ...] = (31337,),
        allow_private_webhooks: bool = False,
    ) -> Gateway:
        data = self.tmp_path / f"gateway-{next(self.counter)}"
        data.mkdir()
        settings = Settings(
            data_dir=data,
            database_url=f"sqlite+aiosqlite:///{data / 'gateway.db'}",
            chains_file=chains or self.default_chains,
            secret_key=Fernet.generate_key().decode(),
            public_url="https://pay.example.com",
            rate_limit_per_minute=rate_limit_per_minute,
            allow_private_webhooks=allow_private_webhooks,
            _env_file=None,
        )
        clock = FakeClock(NOW_MS)
        app = create_app(settings, clock=clock, migrate=True)
        server = self.stack.enter_context(LiveServer(app))

        async def merchant() -> MerchantKeys:
            engine = make_engine(settings.effective_database_url)
            try:
                async with session_scope(make_sessionmaker(engine)) as session:
                    created = await create_merchant(
                        session,
                        load_secret_box(settings),
                        clock,
                        name="SDK Shop",
                        payout_address=payout,
                        chain_ids=list(chain_ids),
                    )
            finally:
                await engine.dispose()
            return MerchantKeys(
                created.merchant_id, created.api_key, created.secret_key, created.webhook_secret
            )

        return Gateway(server.url, clock, settings, run_in_fresh_loop(merchant), payout)

    def close(self) -> None:
        self.stack.close()


StartGateway = Callable[..., Gateway]
