"""A watcher on the session's anvil node, with a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.conftest import copy_migrated_sqlite, empty_tables

from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.blocks import fetch_header
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.chain.registry import Chain, ChainRegistry, Token
from stablegate.clock import FakeClock
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models import Merchant, Order, Payment, WebhookEvent
from stablegate.orders.context import OrderContext
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.orders.service import create_order
from stablegate.secret_box import SecretBox
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.reports import StepOutcome, StepReport

DECIMALS = {"USDT": 6, "USDC": 6, "USDT18": 18}


@dataclass
class WatchEnv:
    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock
    rpc: RpcClient
    chain: Chain
    orders: OrderContext
    tokens: dict[str, str]
    merchant_id: str
    payout: str
    customers: list[LocalAccount]
    watcher: ChainWatcher

    def new_watcher(self, **options: object) -> ChainWatcher:
        return ChainWatcher(
            self.chain,
            self.sessions,
            self.clock,
            self.rpc,
            self.orders,
            options=WatcherOptions(**options),  # type: ignore[arg-type]
        )

    async def chain_time_ms(self) -> int:
        header = await fetch_header(self.rpc, "latest")
        assert header is not None
        return header.time_ms

    async def order(self, amount: str, *, symbol: str = "USDT", expire_seconds: int = 900) -> Order:
        # Orders are created "now" in chain time, so expiry is decided by chain blocks.
        self.clock.set_ms(await self.chain_time_ms())
        req = CreateOrderRequest.model_validate(
            {
                "chainId": self.chain.id,
                "symbol": symbol,
                "amount": amount,
                "expireSeconds": expire_seconds,
            }
        )
        async with session_scope(self.sessions) as session:
            order, _ = await create_order(
                session, self.clock, self.orders, merchant_id=self.merchant_id, req=req
            )
        return order

    async def pay(
        self, order: Order, units: int, *, symbol: str | None = None, customer: int = 0
    ) -> str:
        token = self.tokens[symbol or order.symbol]
        receipt = await transact(
            self.rpc,
            self.customers[customer],
            token,
            tether_token().encode_call("transfer", order.to_address, units),
        )
        return str(receipt["transactionHash"])

    async def mine(self, blocks: int = 1, *, seconds_apart: int | None = None) -> None:
        if seconds_apart is not None:
            await self.rpc.call("anvil_mine", [hex(blocks), hex(seconds_apart)])
        else:
            await self.rpc.call("anvil_mine", [hex(blocks)])

    async def finalize(self) -> None:
        """Mine enough blocks that everything so far is below anvil's finalized tag."""
        await self.mine(70)

    async def sync(
        self, watcher: ChainWatcher | None = None, max_steps: int = 200
    ) -> list[StepReport]:
        watcher = watcher or self.watcher
        reports = []
        for _ in range(max_steps):
            report = await watcher.step()
            reports.append(report)
            assert report.outcome not in (StepOutcome.RETRY, StepOutcome.FENCED), report
            if report.outcome == StepOutcome.IDLE:
                return reports
        raise AssertionError("watcher did not catch up")

    async def reload(self, order_id: str) -> Order:
        async with session_scope(self.sessions) as session:
            order = await session.get(Order, order_id)
            assert order is not None
            return order

    async def events(self, order_id: str) -> list[str]:
        async with session_scope(self.sessions) as session:
            rows = await session.scalars(
                select(WebhookEvent.type)
                .where(WebhookEvent.order_id == order_id)
                .order_by(WebhookEvent.sequence)
            )
            return list(rows.all())

    async def payments(self, order_id: str | None = None) -> list[Payment]:
        async with session_scope(self.sessions) as session:
            query = select(Payment).order_by(Payment.id)
            if order_id is not None:
                query = query.where(Payment.order_id == order_id)
            return list((await session.scalars(query)).all())

    async def set_policy(
        self, *, late_payment: str | None = None, tolerance_ppm: int | None = None
    ) -> None:
        async with session_scope(self.sessions) as session:
            merchant = await session.get(Merchant, self.merchant_id)
            assert merchant is not None
            if late_payment is not None:
                merchant.late_payment = late_payment
            if tolerance_ppm is not None:
                merchant.underpay_tolerance_ppm = tolerance_ppm


@pytest_asyncio.fixture
async def env(
    database_url: str,
    anvil: AnvilNode,
    rpc: RpcClient,
    gateway_contracts: DeployedContracts,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    clean_chain: None,
    migrated_sqlite: Path,
) -> AsyncIterator[WatchEnv]:
    copied = copy_migrated_sqlite(migrated_sqlite, database_url)
    engine = make_engine(database_url)
    if not copied:
        await upgrade(engine)
    if not database_url.startswith("sqlite"):
        await empty_tables(engine)
    sessions = make_sessionmaker(engine)
    chain = Chain(
        id=31337,
        name="Local dev chain",
        network="devchain",
        confirmations=2,
        block_time=1,
        testnet=True,
        rpc_urls=(anvil.url,),
        factory=gateway_contracts.factory,
        implementation=gateway_contracts.implementation,
        tokens=tuple(
            Token(symbol, address, DECIMALS[symbol]) for symbol, address in dev_tokens.items()
        ),
    )
    orders = OrderContext(
        registry=ChainRegistry({chain.id: chain}), public_url="http://gw", max_order_amount=10**9
    )
    clock = FakeClock()
    from cryptography.fernet import Fernet

    box = SecretBox(Fernet.generate_key())
    payout = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
    async with session_scope(sessions) as session:
        created = await create_merchant(
            session, box, clock, name="Shop", payout_address=payout, chain_ids=[chain.id]
        )
    env = WatchEnv(
        sessions,
        clock,
        rpc,
        chain,
        orders,
        dev_tokens,
        created.merchant_id,
        payout,
        customer_accounts,
        None,
    )  # type: ignore[arg-type]
    env.clock.set_ms(await env.chain_time_ms())
    env.watcher = env.new_watcher(poll_interval=0.05)
    # First step initialises the cursor at the current head.
    await env.sync()
    yield env
    await engine.dispose()
