"""Binance: book tickers of its fiat markets, EUR ones inverted, delisted symbols left out."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from structlog.testing import capture_logs
from tests.rates.provider_server import ProviderServer
from tests.rates.sources.conftest import NOW_MS

from stablegate.clock import FakeClock
from stablegate.rates.quote import Quote, SourceError, SourceFault
from stablegate.rates.sources.binance import MARKETS, BinanceSource


def asked_symbols(target: str) -> list[str]:
    return json.loads(parse_qs(urlsplit(target).query)["symbols"][0])


async def test_quotes_every_market_with_the_arrival_time(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    source = BinanceSource(provider_server.url_for("binance"), clock)
    quotes = {(quote.base, quote.quote): quote for quote in await source.fetch(http)}

    assert set(quotes) == {(coin, fiat) for coin, fiat, _ in MARKETS.values()}
    assert quotes["USDT", "TRY"] == Quote(
        "binance", "USDT", "TRY", Decimal("34.20"), Decimal("34.19"), Decimal("34.21"), NOW_MS
    )
    assert quotes["USDT", "JPY"].mid == Decimal("150.71")
    # Binance's answer has no time: the quote is stamped when it arrived.
    assert {quote.time_ms for quote in quotes.values()} == {NOW_MS}
    # One request, for the listed markets only (not BTCUSDT, which the server also lists).
    (target,) = provider_server.requests_to("binance")
    assert asked_symbols(target) == list(MARKETS)


async def test_a_market_priced_in_the_stablecoin_is_inverted_with_bid_and_ask_swapped(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    # EURUSDT: a euro costs 1.0849 USDT to sell, 1.0851 USDT to buy.
    provider_server.set_price("binance", "EUR", "USDT", "1.0850", bid="1.0849", ask="1.0851")
    source = BinanceSource(provider_server.url_for("binance"), clock)
    quotes = {(quote.base, quote.quote): quote for quote in await source.fetch(http)}

    # USDT/EUR: bid = 1 / 1.0851, ask = 1 / 1.0849 (12 significant digits), mid their mean.
    assert quotes["USDT", "EUR"] == Quote(
        "binance",
        "USDT",
        "EUR",
        Decimal("0.9216589940045"),
        Decimal("0.921574048475"),
        Decimal("0.921743939534"),
        NOW_MS,
    )


async def test_a_delisted_symbol_is_found_once_and_no_longer_asked(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.remove_price("binance", "USDT", "CZK")
    source = BinanceSource(provider_server.url_for("binance"), clock)

    with capture_logs() as logs:
        first = await source.fetch(http)
    assert ("USDT", "CZK") not in {(quote.base, quote.quote) for quote in first}
    assert len(first) == len(MARKETS) - 1
    assert [log["pair"] for log in logs if log["event"] == "rate_pair_unlisted"] == ["USDTCZK"]
    # The whole request was refused (HTTP 400, -1121), then each symbol asked alone.
    targets = provider_server.requests_to("binance")
    assert [asked_symbols(target) for target in targets[1:]] == [[s] for s in MARKETS]

    second = await source.fetch(http)
    assert second == first
    last = provider_server.requests_to("binance")[-1]
    assert asked_symbols(last) == [symbol for symbol in MARKETS if symbol != "USDTCZK"]
    assert len(provider_server.requests_to("binance")) == len(targets) + 1


async def test_every_symbol_delisted_is_an_invalid_price(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    for base, quote in list(provider_server.prices["binance"]):
        provider_server.remove_price("binance", base, quote)
    source = BinanceSource(provider_server.url_for("binance"), clock)
    with pytest.raises(SourceError) as caught:
        await source.fetch(http)
    assert caught.value.fault == SourceFault.INVALID_PRICE


async def test_a_crossed_book_or_a_zero_price_drops_that_market_only(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("binance", "USDT", "TRY", "34.2", bid="34.3", ask="34.1")
    provider_server.set_price("binance", "USDT", "BRL", "5.6", bid="0", ask="5.601")
    source = BinanceSource(provider_server.url_for("binance"), clock)
    with capture_logs() as logs:
        quotes = await source.fetch(http)

    pairs = {(quote.base, quote.quote) for quote in quotes}
    assert ("USDT", "TRY") not in pairs
    assert ("USDT", "BRL") not in pairs
    assert len(quotes) == len(MARKETS) - 2
    reasons = {(log["pair"], log["reason"]) for log in logs if log["event"] == "rate_price_dropped"}
    assert reasons == {("USDT/TRY", "crossed book"), ("USDT/BRL", "zero or negative")}


async def test_another_refusal_is_an_http_status(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    body = json.dumps({"code": -1003, "msg": "Too many requests."}).encode()
    provider_server.set_fault("binance", "raw", status=429, body=body)
    source = BinanceSource(provider_server.url_for("binance"), clock)
    with pytest.raises(SourceError) as caught:
        await source.fetch(http)
    assert caught.value.fault == SourceFault.HTTP_STATUS
    assert "429" in caught.value.message
