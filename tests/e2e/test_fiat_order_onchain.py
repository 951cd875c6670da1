"""Orders priced in fiat, end to end on the dev chain: 72 CNY at the operator's fixed 7.2 CNY
per USDT is 10 USDT; the same 72 CNY at the median of three sources (local servers answering as
Kraken, OKX and Coinbase, fetched by the real fetcher) less a 1 % spread is the amount computed
here with Decimal. The customer pays on chain; the order completes; its webhooks and the
merchant's contractPayment query carry the price it was made at.

Real anvil node, real API (the SDK as the shop's client), the gateway's real rates, watcher and
webhook worker, and the shop's real HTTP endpoint checking signatures with the SDK.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from stablegate_client import AsyncClient, OrderStatus, verify_webhook
from tests.chain_files import dev_chain_settings
from tests.rates.provider_server import ProviderServer
from tests.support import NOW_MS
from tests.webhooks.webhook_support import Receiver, drive, make_worker

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.chain.anvil import AnvilNode
from stablegate.chain.evm.blocks import fetch_header
from stablegate.chain.evm.contracts import tether_token
from stablegate.chain.evm.deploy import DeployedContracts
from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.wallet import transact
from stablegate.clock import FakeClock
from stablegate.db.engine import session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store
from stablegate.rates.fetcher import RateFetcher
from stablegate.rates.sources import build_sources
from stablegate.watcher.loop import ChainWatcher
from stablegate.watcher.options import WatcherOptions
from stablegate.watcher.reports import StepOutcome

pytestmark = [pytest.mark.anvil, pytest.mark.usefixtures("clean_chain")]


@dataclass
class Gateway:
    ctx: GatewayContext
    app: FastAPI
    clock: FakeClock

    def shop(self, api_key: str, secret_key: str) -> AsyncClient:
        """The shop's SDK client, talking to the app in process."""
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))
        return AsyncClient(
            "http://gw", api_key, secret_key=secret_key, http_client=http, now_ms=self.clock.now_ms
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS)


@pytest.fixture
def shop_endpoint(clock: FakeClock) -> Iterator[Receiver]:
    with Receiver(clock) as receiver:
        yield receiver


@pytest_asyncio.fixture
async def gateway(
    tmp_path: Path,
    clock: FakeClock,
    anvil: AnvilNode,
    dev_tokens: dict[str, str],
    gateway_contracts: DeployedContracts,
) -> AsyncIterator[Gateway]:
    settings = dev_chain_settings(
        tmp_path,
        anvil.url,
        gateway_contracts,
        dev_tokens,
        allow_private_webhooks=True,  # the shop's endpoint is on 127.0.0.1
    )
    app = create_app(settings, clock=clock, migrate=True)
    ctx: GatewayContext = app.state.gateway
    await upgrade(ctx.engine)
    yield Gateway(ctx, app, clock)
    await ctx.engine.dispose()


async def watch_until_final(rpc: RpcClient, watcher: ChainWatcher) -> None:
    await rpc.call("anvil_mine", [hex(70)])  # below anvil's finalized tag
    for _ in range(200):
        report = await watcher.step()
        assert report.outcome not in (StepOutcome.RETRY, StepOutcome.FENCED), report
        if report.outcome == StepOutcome.IDLE:
            return
    raise AssertionError("the watcher did not catch up")


@dataclass(frozen=True)
class Priced:
    """What the order must come back with."""

    units: int  # USDT base units
    rate: str
    rate_source: str
    rate_time_ms: int


async def test_72_cny_at_a_fixed_7_2_is_paid_as_10_usdt_and_completes_with_its_price(
    gateway: Gateway,
    shop_endpoint: Receiver,
    rpc: RpcClient,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
) -> None:
    await _at_chain_time(gateway, rpc)
    async with session_scope(gateway.ctx.sessions) as session:
        # The operator's `stablegate rates set-fixed --symbol USDT --currency CNY --rate 7.2`.
        rule = await store.set_rule(
            session,
            gateway.clock,
            scope=GATEWAY_SCOPE,
            symbol="USDT",
            currency="CNY",
            changes={"adjust": "7.2"},
            actor="ops",
        )
        assert rule is not None
    expected = Priced(10_000_000, "7.2", "fixed", rule.updated_at_ms)
    await _priced_paid_and_reported(
        gateway, shop_endpoint, rpc, dev_tokens, customer_accounts, expected
    )


async def test_72_cny_at_the_median_of_three_sources_less_a_spread(
    gateway: Gateway,
    shop_endpoint: Receiver,
    rpc: RpcClient,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
) -> None:
    clock = gateway.clock
    await _at_chain_time(gateway, rpc)
    with ProviderServer() as providers:
        providers.time_ms = clock.now_ms()
        providers.set_price("kraken", "USDT", "USD", "0.9998")
        providers.set_price("okx", "USDT", "USD", "1.0003")  # the USDT-USD index
        providers.set_price("okx", "USD", "CNY", "7.25")  # its exchange-rate usdCny
        providers.set_price("coinbase", "USDT", "CNY", "7.2550")
        providers.set_price("ecb", "EUR", "USD", "1.0800")
        providers.set_price("ecb", "EUR", "CNY", "7.8300")
        settings = gateway.ctx.settings.model_copy(
            update={**providers.settings(), "rate_sources": ["kraken", "okx", "coinbase"]}
        )
        fetcher = RateFetcher(gateway.ctx.sessions, clock, settings, build_sources(settings, clock))
        report = await fetcher.fetch_once()
        assert not report.failed and not report.standby, report
    async with session_scope(gateway.ctx.sessions) as session:
        # `stablegate rates set-rule --symbol USDT --currency CNY --sources kraken,okx,coinbase
        #  --spread 1`
        await store.set_rule(
            session,
            clock,
            scope=GATEWAY_SCOPE,
            symbol="USDT",
            currency="CNY",
            changes={"sources": ["kraken", "okx", "coinbase"], "spread_pct": "1"},
            actor="ops",
        )
        ecb_time = min(q.time_ms for q in await store.latest_quotes(session) if q.source == "ecb")
    with localcontext() as context:
        context.prec = 60
        kraken = Decimal("0.9998") * (Decimal("7.8300") / Decimal("1.0800"))  # via the ECB
        okx = Decimal("1.0003") * Decimal("7.25")  # direct: index x usdCny
        coinbase = Decimal("7.2550")  # direct
        assert sorted([kraken, okx, coinbase]) == [kraken, okx, coinbase]
        rate = okx * (1 - Decimal(1) / 100)  # the median, less the 1 % spread
        units = int((Decimal(72) / rate * 10**6).to_integral_value(rounding=ROUND_CEILING))
    assert (rate, units) == (Decimal("7.17965325"), 10_028_340)  # 10.0283394…, rounded up
    expected = Priced(units, "7.17965325", "median(kraken,okx,coinbase) spread 1%", ecb_time)
    await _priced_paid_and_reported(
        gateway, shop_endpoint, rpc, dev_tokens, customer_accounts, expected
    )


async def _at_chain_time(gateway: Gateway, rpc: RpcClient) -> None:
    header = await fetch_header(rpc, "latest")
    assert header is not None
    gateway.clock.set_ms(header.time_ms)  # orders expire in chain time


async def _priced_paid_and_reported(
    gateway: Gateway,
    shop_endpoint: Receiver,
    rpc: RpcClient,
    dev_tokens: dict[str, str],
    customer_accounts: list[LocalAccount],
    expected: Priced,
) -> None:
    clock = gateway.clock
    chain = gateway.ctx.registry.require(31337)
    watcher = ChainWatcher(
        chain, gateway.ctx.sessions, clock, rpc, gateway.ctx.orders, options=WatcherOptions()
    )
    assert (await watcher.step()).outcome != StepOutcome.RETRY  # cursor at the head

    hook = shop_endpoint.url("webhooks")
    async with session_scope(gateway.ctx.sessions) as session:
        created = await create_merchant(
            session,
            gateway.ctx.secret_box,
            clock,
            name="Tea Shop",
            payout_address=Account.create().address,
            chain_ids=[31337],
            notify_url=hook,
        )
    amount = Decimal(expected.units) / 10**6
    rate = Decimal(expected.rate)

    async with gateway.shop(created.api_key, created.secret_key) as shop:
        order = await shop.create_order(
            31337, "USDT", Decimal("72.00"), currency="CNY", order_no="tea-72"
        )
        assert (order.amount, order.symbol) == (amount, "USDT")
        assert (order.fiat_amount, order.currency, order.rate) == (Decimal(72), "CNY", rate)
        assert (order.rate_source, order.rate_time_ms) == (
            expected.rate_source,
            expected.rate_time_ms,
        )

        transfer = tether_token().encode_call("transfer", order.to_address, expected.units)
        await transact(rpc, customer_accounts[0], dev_tokens["USDT"], transfer)
        await watch_until_final(rpc, watcher)

        clock.advance(1)
        paid = await shop.get_order(order_no="tea-72")
        assert paid.status == OrderStatus.COMPLETED
        assert (paid.amount, paid.paid_amount) == (amount, amount)
        assert (paid.fiat_amount, paid.currency, paid.rate) == (Decimal(72), "CNY", rate)
        assert (paid.rate_source, paid.rate_time_ms) == (
            expected.rate_source,
            expected.rate_time_ms,
        )
        assert paid.raw["fiatAmount"] == "72" and paid.raw["rate"] == expected.rate

    async with make_worker(gateway.ctx, clock) as worker:
        await drive(gateway.ctx, clock, [worker], until_ms=clock.now_ms())
    events = {}
    for hit in shop_endpoint.snapshot():
        event = verify_webhook(
            hit.headers,
            hit.body,
            secret=created.webhook_secret,
            merchant_id=created.merchant_id,
            now=clock.now_ms() / 1000,
        )
        events[event.type] = (event, json.loads(hit.body)["data"])
    assert {"order.created", "order.completed"} <= set(events)
    for kind in ("order.created", "order.completed"):
        event, data = events[kind]
        assert event.order is not None and event.order.order_id == order.order_id
        assert (data["amount"], data["fiatAmount"], data["currency"]) == (
            format(amount.normalize(), "f"),
            "72",
            "CNY",
        )
        assert (data["rate"], data["rateSource"], data["rateTime"]) == (
            expected.rate,
            expected.rate_source,
            expected.rate_time_ms,
        )
    assert events["order.completed"][1]["status"] == "completed"
