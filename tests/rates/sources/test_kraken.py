"""Kraken: ticker bid and ask per pair, read under Kraken's own result names."""

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
from stablegate.rates.sources.kraken import PAIRS, KrakenSource, result_names


def asked_pairs(target: str) -> list[str]:
    return parse_qs(urlsplit(target).query)["pair"][0].split(",")


def ticker(bid: str, ask: str) -> dict[str, object]:
    return {"a": [ask, "1", "1.000"], "b": [bid, "1", "1.000"], "c": [bid, "1.0"]}


async def test_quotes_every_pair_with_bid_and_ask(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("kraken", "USDT", "USD", "0.9998", bid="0.99975", ask="0.99985")
    source = KrakenSource(provider_server.url_for("kraken"), clock)
    quotes = await source.fetch(http)

    assert [(quote.base, quote.quote) for quote in quotes] == list(PAIRS)
    # Answered as USDTZUSD, read as USDT/USD; mid = (bid + ask) / 2; stamped on arrival.
    assert quotes[0] == Quote(
        "kraken", "USDT", "USD", Decimal("0.9998"), Decimal("0.99975"), Decimal("0.99985"), NOW_MS
    )
    assert quotes[-1] == Quote(
        "kraken", "DAI", "EUR", Decimal("0.92130"), Decimal("0.92120"), Decimal("0.92140"), NOW_MS
    )
    (target,) = provider_server.requests_to("kraken")
    assert asked_pairs(target) == [coin + fiat for coin, fiat in PAIRS]


def test_result_names_cover_the_legacy_prefixes() -> None:
    assert result_names("USDT", "USD") == ("USDTUSD", "USDTZUSD", "XUSDTZUSD", "XUSDTUSD")


async def test_an_unknown_pair_is_found_once_and_no_longer_asked(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.remove_price("kraken", "DAI", "EUR")
    source = KrakenSource(provider_server.url_for("kraken"), clock)
    with capture_logs() as logs:
        quotes = await source.fetch(http)

    assert len(quotes) == len(PAIRS) - 1
    assert ("DAI", "EUR") not in {(quote.base, quote.quote) for quote in quotes}
    assert [log["pair"] for log in logs if log["event"] == "rate_pair_unlisted"] == ["DAIEUR"]

    await source.fetch(http)
    last = provider_server.requests_to("kraken")[-1]
    assert "DAIEUR" not in asked_pairs(last)
    assert len(asked_pairs(last)) == len(PAIRS) - 1


async def test_warnings_are_not_errors(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    body = {"error": ["WGeneral:Deprecated"], "result": {"USDTZUSD": ticker("0.9997", "0.9999")}}
    provider_server.set_fault("kraken", "raw", body=json.dumps(body).encode())
    quotes = await KrakenSource(provider_server.url_for("kraken"), clock).fetch(http)
    assert quotes == [
        Quote(
            "kraken", "USDT", "USD", Decimal("0.9998"), Decimal("0.9997"), Decimal("0.9999"), NOW_MS
        )
    ]


async def test_an_empty_bid_is_malformed(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    body = {"error": [], "result": {"USDTZUSD": {"a": ["1.0", "1", "1.000"], "b": []}}}
    provider_server.set_fault("kraken", "raw", body=json.dumps(body).encode())
    with pytest.raises(SourceError) as caught:
        await KrakenSource(provider_server.url_for("kraken"), clock).fetch(http)
    assert caught.value.fault == SourceFault.MALFORMED


async def test_a_negative_bid_drops_that_pair_only(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("kraken", "USDC", "GBP", "0.7857", bid="-0.7856", ask="0.7858")
    quotes = await KrakenSource(provider_server.url_for("kraken"), clock).fetch(http)
    assert len(quotes) == len(PAIRS) - 1
    assert ("USDC", "GBP") not in {(quote.base, quote.quote) for quote in quotes}
