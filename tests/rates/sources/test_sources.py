"""build_sources: the configured market sources, then the ECB reference; all from one server."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from tests.rates.provider_server import PROVIDERS, ProviderServer
from tests.rates.sources.conftest import NOW_MS

from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.rates.quote import Quote
from stablegate.rates.sources import build_sources


def test_the_default_sources_and_the_reference() -> None:
    names = [source.name for source in build_sources(Settings())]
    assert names == ["kraken", "coinbase", "okx", "coingecko", "binance", "ecb"]


def test_the_configured_order_is_kept_and_the_reference_always_added() -> None:
    settings = Settings(rate_sources="okx, binance")
    assert [source.name for source in build_sources(settings)] == ["okx", "binance", "ecb"]
    assert [source.name for source in build_sources(Settings(rate_sources=""))] == ["ecb"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("kraken,bitstamp", "unknown source bitstamp"),
        ("kraken,ecb", "unknown source ecb"),
        ("kraken,okx,kraken", "kraken listed twice"),
    ],
)
def test_an_unknown_or_repeated_source_is_refused_at_start_up(names: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_sources(Settings(rate_sources=names))


def test_an_invalid_url_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="okx"):
        build_sources(Settings(rate_okx_url="www.okx.com"))
    with pytest.raises(ValueError, match="ecb"):
        build_sources(Settings(rate_sources="", rate_ecb_url="file:///tmp/rates.xml"))


async def test_one_server_answers_for_every_source(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    # Three sources' USDT/USD, as an end-to-end test of a median would set them.
    provider_server.set_price("kraken", "USDT", "USD", "0.9998")
    provider_server.set_price("coinbase", "USDT", "USD", "1.0001")
    provider_server.set_price("okx", "USDT", "USD", "0.99995")
    settings = Settings(**provider_server.settings(), rate_sources=",".join(PROVIDERS[:-1]))
    sources = build_sources(settings, clock)
    assert [source.name for source in sources] == list(PROVIDERS)

    quotes = {source.name: await source.fetch(http) for source in sources}
    usdt_usd = {
        name: quote.mid
        for name, answer in quotes.items()
        for quote in answer
        if (quote.base, quote.quote) == ("USDT", "USD")
    }
    assert usdt_usd == {
        "kraken": Decimal("0.9998"),
        "coinbase": Decimal("1.0001"),
        "okx": Decimal("0.99995"),
        "coingecko": Decimal("1.0002"),
    }
    assert (
        Quote(
            "kraken", "USDT", "USD", Decimal("0.9998"), Decimal("0.9998"), Decimal("0.9998"), NOW_MS
        )
        in quotes["kraken"]
    )
    assert all(quotes.values())
