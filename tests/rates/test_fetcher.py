"""The rate fetcher with small test-double sources, on SQLite and PostgreSQL: every source asked
at once, every quote stored, failures logged once and never fatal, one fetcher per gateway,
the peg alert, and a restarted gateway pricing from storage with every source down."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs
from tests.support import NOW_MS

from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.engine import session_scope
from stablegate.errors import GatewayError
from stablegate.models import Lease, RateQuote
from stablegate.rates.fetcher import LEASE_NAME, RateFetcher
from stablegate.rates.quote import Quote, SourceError, SourceFault


def quote(source: str, pair: str, mid: str, time_ms: int = NOW_MS) -> Quote:
    base, currency = pair.split("/")
    return Quote(source, base, currency, Decimal(mid), None, None, time_ms)


class Source:
    """Answers with its quotes, or raises what it was told to."""

    def __init__(self, name: str, quotes: list[Quote] | None = None) -> None:
        self.name = name
        self.quotes = quotes or []
        self.error: Exception | None = None
        self.calls = 0

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        assert isinstance(client, httpx.AsyncClient)
        self.calls += 1
        if self.error is not None:
            raise self.error
        return list(self.quotes)


class Meeting(Source):
    """Answers only once every other Meeting source was asked too: sources asked one after
    the other would each wait out the fetch timeout."""

    def __init__(self, name: str, quotes: list[Quote], everyone: asyncio.Barrier) -> None:
        super().__init__(name, quotes)
        self.everyone = everyone

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        await self.everyone.wait()
        return await super().fetch(client)


class Silent(Source):
    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        await asyncio.Event().wait()
        raise AssertionError("never answers")


def fetcher_settings(settings: Settings, **changes: object) -> Settings:
    values: dict[str, object] = {"rate_fetch_timeout_s": 2.0, "rate_refresh_s": 1.0}
    values.update(changes)
    return settings.model_copy(update=values)


def fetcher(gateway: GatewayContext, sources: list[Source], **changes: object) -> RateFetcher:
    settings = fetcher_settings(gateway.settings, **changes)
    return RateFetcher(gateway.sessions, gateway.clock, settings, sources)


async def stored(gateway: GatewayContext) -> dict[tuple[str, str, str], str]:
    async with session_scope(gateway.sessions) as session:
        rows = await session.scalars(select(RateQuote))
        return {(row.source, row.base, row.quote): row.mid for row in rows}


MARKET = {
    "kraken": [quote("kraken", "USDT/USD", "1.0002"), quote("kraken", "USDT/EUR", "0.92")],
    "okx": [quote("okx", "USDT/CNY", "7.21")],
    "ecb": [quote("ecb", "EUR/USD", "1.08", NOW_MS - 3_600_000)],
}


async def test_every_source_is_asked_at_once_and_every_quote_stored(
    gateway: GatewayContext,
) -> None:
    everyone = asyncio.Barrier(3)
    sources: list[Source] = [Meeting(name, quotes, everyone) for name, quotes in MARKET.items()]
    report = await fetcher(gateway, sources).fetch_once()
    assert not report.standby and report.failed == {}
    assert report.quotes == 4 and report.history_rows == 4
    assert await stored(gateway) == {
        ("kraken", "USDT", "USD"): "1.0002",
        ("kraken", "USDT", "EUR"): "0.92",
        ("okx", "USDT", "CNY"): "7.21",
        ("ecb", "EUR", "USD"): "1.08",
    }


async def test_a_failing_source_is_reported_and_the_others_are_stored(
    gateway: GatewayContext,
) -> None:
    down = Source("coinbase")
    down.error = SourceError("coinbase", SourceFault.HTTP_STATUS, "HTTP 503")
    broken = Source("binance")
    broken.error = RuntimeError("adapter bug")
    refused = Source("coingecko")
    refused.error = httpx.ConnectError("connection refused")
    sources = [
        Source("kraken", MARKET["kraken"]),
        down,
        broken,
        refused,
        Silent("okx"),
    ]
    report = await fetcher(gateway, sources, rate_fetch_timeout_s=0.2).fetch_once()
    assert report.failed == {
        "coinbase": "http_status: HTTP 503",
        "binance": "malformed: RuntimeError: adapter bug",
        "coingecko": "timeout: ConnectError: connection refused",
        "okx": "timeout: no answer within 0.2 s",
    }
    assert set(await stored(gateway)) == {("kraken", "USDT", "USD"), ("kraken", "USDT", "EUR")}


async def test_a_failing_source_is_logged_when_it_starts_failing_and_when_it_recovers(
    gateway: GatewayContext,
) -> None:
    kraken = Source("kraken", MARKET["kraken"])
    rates = fetcher(gateway, [kraken])
    events: list[tuple[str, str, str | None]] = []
    with capture_logs() as logs:
        await rates.fetch_once()
        kraken.error = SourceError("kraken", SourceFault.TIMEOUT, "no answer")
        await rates.fetch_once()
        await rates.fetch_once()
        kraken.error = SourceError("kraken", SourceFault.MALFORMED, "not JSON")
        await rates.fetch_once()
        kraken.error = None
        await rates.fetch_once()
        await rates.fetch_once()
    for line in logs:
        if line["event"].startswith("rate_source"):
            events.append((line["event"], line["log_level"], line.get("fault")))
    assert events == [
        ("rate_source_failed", "warning", "timeout"),
        ("rate_source_failed", "warning", "malformed"),  # a different fault is news
        ("rate_source_recovered", "info", None),
    ]
    assert kraken.calls == 6


async def test_one_fetcher_per_gateway_through_the_rates_lease(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    first = fetcher(gateway, [Source("kraken", MARKET["kraken"])])
    okx = Source("okx", MARKET["okx"])
    second = fetcher(gateway, [okx])
    assert not (await first.fetch_once()).standby
    assert (await second.fetch_once()).standby and okx.calls == 0
    clock.advance(first.ttl_ms / 1000 + 1)  # the first one died: its lease runs out
    assert not (await second.fetch_once()).standby and okx.calls == 1
    assert (await first.fetch_once()).standby
    await second.release()
    assert not (await first.fetch_once()).standby  # handed over at once


async def test_run_forever_fetches_until_stopped_and_hands_the_lease_over(
    gateway: GatewayContext,
) -> None:
    stop = asyncio.Event()

    class Stopping(Source):
        async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
            if self.calls == 1:
                stop.set()
            return await super().fetch(client)

    source = Stopping("okx", MARKET["okx"])
    await asyncio.wait_for(fetcher(gateway, [source]).run_forever(stop), 30)
    assert source.calls == 2
    assert await stored(gateway) == {("okx", "USDT", "CNY"): "7.21"}
    async with session_scope(gateway.sessions) as session:
        lease = await session.get(Lease, LEASE_NAME)
    assert lease is not None and lease.expires_at_ms == 0


async def test_a_stablecoin_off_its_peg_is_an_alert_when_it_leaves_and_when_it_returns(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    kraken = Source("kraken", [quote("kraken", "USDT/USD", "0.97")])
    okx = Source("okx", [quote("okx", "USDT/USD", "0.975"), quote("okx", "USDC/USD", "0.999")])
    rates = fetcher(gateway, [kraken, okx], rate_sources=["kraken", "okx"])
    with capture_logs() as logs:
        await rates.fetch_once()
        await rates.fetch_once()  # still off: no second alert
        kraken.quotes = [quote("kraken", "USDT/USD", "0.999")]
        okx.quotes = [quote("okx", "USDT/USD", "1.001")]
        await rates.fetch_once()
    alerts = [line for line in logs if line.get("alert") == "stablecoin_off_peg"]
    assert alerts == [
        {
            "event": "operator_alert",
            "log_level": "error",
            "alert": "stablecoin_off_peg",
            "symbol": "USDT",
            "usd_price": "0.9725",  # the median of 0.97 and 0.975
            "deviation_pct": "-2.7500",
            "limit_pct": "2",
        },
        {
            "event": "operator_alert_cleared",
            "log_level": "warning",
            "alert": "stablecoin_off_peg",
            "symbol": "USDT",
            "usd_price": "1",
            "deviation_pct": "0.0000",
            "limit_pct": "2",
        },
    ]


async def test_a_restarted_gateway_with_every_source_down_prices_from_storage_until_too_old(
    gateway: GatewayContext, clock: FakeClock, settings: Settings
) -> None:
    quotes = [
        quote("kraken", "USDT/CNY", "7.21"),
        quote("okx", "USDT/CNY", "7.23"),
        quote("coinbase", "USDT/CNY", "7.20"),
        quote("ecb", "EUR/USD", "1.08", NOW_MS - 3_600_000),
        quote("ecb", "EUR/CNY", "7.776", NOW_MS - 3_600_000),
    ]
    names = ("kraken", "okx", "coinbase", "ecb")
    before = [Source(name, [q for q in quotes if q.source == name]) for name in names]
    await fetcher(gateway, before).fetch_once()
    await gateway.engine.dispose()  # the gateway stops

    restarted = create_app(settings, clock=clock, migrate=False)
    ctx: GatewayContext = restarted.state.gateway
    try:
        down = [Source(name) for name in names]
        for source in down:
            source.error = SourceError(source.name, SourceFault.TIMEOUT, "unreachable")
        rates = RateFetcher(ctx.sessions, clock, fetcher_settings(settings), down)
        clock.advance(299)  # market quotes 299 s old: fresh (max age 300 s)
        assert (await rates.fetch_once()).quotes == 0
        async with session_scope(ctx.sessions) as session:
            rate = await ctx.rates.pair_rate(session, None, "USDT", "CNY")
            assert rate.rate == Decimal("7.21")
            assert rate.label == "median(kraken,coinbase,okx)"
        clock.advance(2)
        await rates.fetch_once()
        async with session_scope(ctx.sessions) as session:
            with pytest.raises(GatewayError) as refused:
                await ctx.rates.pair_rate(session, None, "USDT", "CNY")
        assert refused.value.code == "rate_unavailable"
        assert "stale" in refused.value.message
        assert len(await stored(ctx)) == 5  # a source down never erases what it gave
    finally:
        await ctx.engine.dispose()
