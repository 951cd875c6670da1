"""OKX: USD index prices with their own time, and CNY through OKX's usdCny."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from structlog.testing import capture_logs
from tests.rates.provider_server import ProviderServer
from tests.rates.sources.conftest import PROVIDER_TIME_MS

from stablegate.clock import FakeClock
from stablegate.rates.quote import Quote, SourceError, SourceFault
from stablegate.rates.sources.okx import OkxSource


async def test_quotes_the_usd_indices_and_their_cny_price(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("okx", "USDT", "USD", "0.99985")
    provider_server.set_price("okx", "USD", "CNY", "7.1650")
    quotes = await OkxSource(provider_server.url_for("okx"), clock).fetch(http)

    def quote(base: str, fiat: str, mid: str) -> Quote:
        return Quote("okx", base, fiat, Decimal(mid), None, None, PROVIDER_TIME_MS)

    assert quotes == [
        quote("USDT", "USD", "0.99985"),
        quote("USDC", "USD", "0.99992"),
        quote("DAI", "USD", "0.99970"),
        # 0.99985 x 7.1650, exactly; at the index's time.
        quote("USDT", "CNY", "7.163925250"),
        quote("USDC", "CNY", "7.164426800"),
        quote("DAI", "CNY", "7.162850500"),
    ]
    assert sorted(provider_server.requests_to("okx")) == [
        "/api/v5/market/exchange-rate",
        "/api/v5/market/index-tickers?quoteCcy=USD",
    ]


async def test_without_the_exchange_rate_the_usd_quotes_stand(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault("okx", "status_500", match="exchange-rate")
    with capture_logs() as logs:
        quotes = await OkxSource(provider_server.url_for("okx"), clock).fetch(http)
    assert [(quote.base, quote.quote) for quote in quotes] == [
        ("USDT", "USD"),
        ("USDC", "USD"),
        ("DAI", "USD"),
    ]
    (failed,) = [log for log in logs if log["event"] == "rate_request_failed"]
    assert failed["source"] == "okx"


async def test_a_zero_usd_cny_rate_gives_no_cny_quote(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("okx", "USD", "CNY", "0")
    quotes = await OkxSource(provider_server.url_for("okx"), clock).fetch(http)
    assert {quote.quote for quote in quotes} == {"USD"}


async def test_without_the_index_nothing_is_quoted(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault("okx", "status_503", match="index-tickers")
    with pytest.raises(SourceError) as caught:
        await OkxSource(provider_server.url_for("okx"), clock).fetch(http)
    assert caught.value.fault == SourceFault.HTTP_STATUS


async def test_a_stale_index_keeps_its_old_time(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault("okx", "stale", stale_s=600)
    quotes = await OkxSource(provider_server.url_for("okx"), clock).fetch(http)
    assert {quote.time_ms for quote in quotes} == {PROVIDER_TIME_MS - 600_000}


async def test_a_zero_index_drops_that_coin_only(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("okx", "DAI", "USD", "0")
    quotes = await OkxSource(provider_server.url_for("okx"), clock).fetch(http)
    assert {quote.base for quote in quotes} == {"USDT", "USDC"}


async def test_an_index_without_its_time_is_malformed(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    body = {"code": "0", "msg": "", "data": [{"instId": "USDT-USD", "idxPx": "0.9999"}]}
    provider_server.set_fault("okx", "raw", body=json.dumps(body).encode(), match="index")
    with pytest.raises(SourceError) as caught:
        await OkxSource(provider_server.url_for("okx"), clock).fetch(http)
    assert caught.value.fault == SourceFault.MALFORMED
