"""What the shop-plugin end-to-end tests (EPay and Epusdt, Greenfield) share: the gateway app on
the dev chain, a watcher at the chain's head, a merchant priced at a fixed rate, the customer's
USDT payment, the watcher run until the payment is final and the webhook worker until the
callbacks are delivered.

The test modules import the ``clock`` and ``gateway`` fixtures from here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.ext.asyncio import AsyncSession
from tests.chain_files import DEV_CHAIN_ID, dev_chain_settings
from tests.support import NOW_MS
from tests.webhooks.webhook_support import drive, make_worker

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.blocks import fetch_header
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.clock import FakeClock
from stablegate.compat.callbacks import callback_formats
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.reports import StepOutcome


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS)


@asynccontextmanager
async def open_gateway(
    tmp_path: Path,
    clock: FakeClock,
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    gateway_contracts: DeployedContracts,
    symbols: Sequence[str] = ("USDT",),
) -> AsyncIterator[tuple[GatewayContext, Any]]:
    """The gateway app on the dev chain accepting the dev ``symbols``, and its context."""
    settings = dev_chain_settings(
        tmp_path,
        anvil.url,
        gateway_contracts,
        dev_tokens,
        symbols,
        public_url="https://pay.example.com",
        allow_private_webhooks=True,  # the shop's endpoint is on 127.0.0.1
    )
    app = create_app(settings, clock=clock, migrate=True)
    ctx: GatewayContext = app.state.gateway
    await upgrade(ctx.engine)
    yield ctx, app
    await ctx.engine.dispose()


@pytest_asyncio.fixture
async def gateway(
    tmp_path: Path,
    clock: FakeClock,
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    gateway_contracts: DeployedContracts,
) -> AsyncIterator[tuple[GatewayContext, Any]]:
    async with open_gateway(tmp_path, clock, anvil, dev_tokens, gateway_contracts) as opened:
        yield opened


async def watcher_at_head(ctx: GatewayContext, clock: FakeClock, rpc: RpcClient) -> ChainWatcher:
    """The dev chain's watcher, its cursor at the head, and the clock at the head's time (orders
    expire in chain time)."""
    header = await fetch_header(rpc, "latest")
    assert header is not None
    clock.set_ms(header.time_ms)
    chain = ctx.registry.require(DEV_CHAIN_ID)
    watcher = ChainWatcher(chain, ctx.sessions, clock, rpc, ctx.orders, options=WatcherOptions())
    assert (await watcher.step()).outcome != StepOutcome.RETRY  # cursor at the head
    return watcher


async def shop_merchant(
    session: AsyncSession,
    ctx: GatewayContext,
    clock: FakeClock,
    *,
    name: str,
    currency: str,
    rate: str,
) -> str:
    """A merchant paid out on the dev chain, its orders in ``currency`` converted to USDT at the
    operator's fixed ``rate`` (`stablegate rates set-fixed --symbol USDT --currency … --rate …`);
    its id."""
    await store.set_rule(
        session,
        clock,
        scope=GATEWAY_SCOPE,
        symbol="USDT",
        currency=currency,
        changes={"adjust": rate},
        actor="ops",
    )
    created = await create_merchant(
        session,
        ctx.secret_box,
        clock,
        name=name,
        payout_address=Account.create().address,
        chain_ids=[DEV_CHAIN_ID],
    )
    return created.merchant_id


async def pay_usdt(
    rpc: RpcClient, customer: LocalAccount, dev_tokens: dict[str, str], to: str, units: int
) -> None:
    """The customer transfers ``units`` of USDT's base units to ``to``."""
    call = tether_token().encode_call("transfer", to, units)
    await transact(rpc, customer, dev_tokens["USDT"], call)


async def step_until_idle(watcher: ChainWatcher) -> None:
    for _ in range(200):
        report = await watcher.step()
        assert report.outcome not in (StepOutcome.RETRY, StepOutcome.FENCED), report
        if report.outcome == StepOutcome.IDLE:
            return
    raise AssertionError("the watcher did not catch up")


async def watch_until_final(rpc: RpcClient, watcher: ChainWatcher) -> None:
    """Mine past the payments' finality, then watch until the watcher is idle."""
    await rpc.call("anvil_mine", [hex(70)])  # below anvil's finalized tag
    await step_until_idle(watcher)


async def deliver_callbacks(ctx: GatewayContext, clock: FakeClock) -> None:
    """Run a webhook worker with every shop-plugin callback format, jumping the clock to each
    retry, until nothing is pending (ten minutes at the most)."""
    async with make_worker(ctx, clock, callback_formats=callback_formats()) as worker:
        await drive(ctx, clock, [worker], until_ms=clock.now_ms() + 600_000)
