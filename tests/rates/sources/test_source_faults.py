"""Every fault of every provider ends in its documented ``SourceError``, never a price.

Each source is asked through the local provider server (tests/rates/provider_server.py)
answering with the provider's real shape, except for the fault switched on.
"""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs
from tests.rates.provider_server import PROVIDERS, ProviderServer

from stablegate.clock import FakeClock
from stablegate.rates.quote import SourceError, SourceFault
from stablegate.rates.sources import RateSource
from stablegate.rates.sources.binance import BinanceSource
from stablegate.rates.sources.coinbase import CoinbaseSource
from stablegate.rates.sources.coingecko import CoinGeckoSource
from stablegate.rates.sources.ecb import EcbSource
from stablegate.rates.sources.kraken import KrakenSource
from stablegate.rates.sources.okx import OkxSource

ADAPTERS = {
    "binance": BinanceSource,
    "okx": OkxSource,
    "kraken": KrakenSource,
    "coinbase": CoinbaseSource,
    "coingecko": CoinGeckoSource,
    "ecb": EcbSource,
}

EXPECTED = {
    "status_500": SourceFault.HTTP_STATUS,
    "status_503": SourceFault.HTTP_STATUS,
    "malformed": SourceFault.MALFORMED,
    "wrong_shape": SourceFault.MALFORMED,
    "zero": SourceFault.INVALID_PRICE,
    "negative": SourceFault.INVALID_PRICE,
    "non_numeric": SourceFault.INVALID_PRICE,
}


def source_of(provider: str, server: ProviderServer, clock: FakeClock) -> RateSource:
    return ADAPTERS[provider](server.url_for(provider), clock)


def test_every_provider_has_an_adapter() -> None:
    assert set(ADAPTERS) == set(PROVIDERS)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_default_answer_gives_quotes(
    provider: str, provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    quotes = await source_of(provider, provider_server, clock).fetch(http)
    assert quotes
    assert all(quote.source == provider and quote.mid > 0 for quote in quotes)


@pytest.mark.parametrize("fault", sorted(EXPECTED))
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_fault_is_a_source_error(
    provider: str,
    fault: str,
    provider_server: ProviderServer,
    clock: FakeClock,
    http: httpx.AsyncClient,
) -> None:
    provider_server.set_fault(provider, fault)
    with capture_logs() as logs, pytest.raises(SourceError) as caught:
        await source_of(provider, provider_server, clock).fetch(http)
    assert caught.value.source == provider
    assert caught.value.fault == EXPECTED[fault]
    if EXPECTED[fault] == SourceFault.INVALID_PRICE:
        dropped = [log for log in logs if log["event"] == "rate_price_dropped"]
        assert dropped
        assert {log["source"] for log in dropped} == {provider}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_no_answer_in_time_is_a_timeout(
    provider: str,
    provider_server: ProviderServer,
    clock: FakeClock,
    impatient_http: httpx.AsyncClient,
) -> None:
    provider_server.set_fault(provider, "timeout")
    with pytest.raises(SourceError) as caught:
        await source_of(provider, provider_server, clock).fetch(impatient_http)
    assert caught.value.fault == SourceFault.TIMEOUT


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_no_server_is_a_timeout(
    provider: str, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    with ProviderServer() as server:
        url = server.url_for(provider)
    # The server has stopped: nothing listens on its port any more.
    with pytest.raises(SourceError) as caught:
        await ADAPTERS[provider](url, clock).fetch(http)
    assert caught.value.fault == SourceFault.TIMEOUT


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_answer_too_large_is_malformed(
    provider: str, provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault(provider, "raw", body=b"[" + b" " * (3 * 1024 * 1024) + b"]")
    with pytest.raises(SourceError) as caught:
        await source_of(provider, provider_server, clock).fetch(http)
    assert caught.value.fault == SourceFault.MALFORMED


@pytest.mark.parametrize("provider", ["okx", "kraken"])
async def test_an_error_inside_a_200_answer_is_a_refusal(
    provider: str, provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault(provider, "refused")
    with pytest.raises(SourceError) as caught:
        await source_of(provider, provider_server, clock).fetch(http)
    assert caught.value.fault == SourceFault.HTTP_STATUS
    assert "navailable" in caught.value.message


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_redirect_is_not_followed(
    provider: str, provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault(provider, "raw", status=302, body=b"")
    with pytest.raises(SourceError) as caught:
        await source_of(provider, provider_server, clock).fetch(http)
    assert caught.value.fault == SourceFault.HTTP_STATUS
