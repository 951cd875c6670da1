"""CoinGecko: JSON numbers read as exact Decimals, times from last_updated_at."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.rates.provider_server import ProviderServer
from tests.rates.sources.conftest import NOW_MS, PROVIDER_TIME_MS

from stablegate.clock import FakeClock
from stablegate.rates.currencies import FIAT_MINOR_UNITS
from stablegate.rates.quote import Quote, SourceError, SourceFault
from stablegate.rates.sources.coingecko import CoinGeckoSource

# last_updated_at is in whole seconds.
UPDATED_MS = PROVIDER_TIME_MS // 1000 * 1000


async def test_quotes_every_coin_from_json_numbers(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("coingecko", "USDC", "USD", "0.999912345678901234")
    quotes = await CoinGeckoSource(provider_server.url_for("coingecko"), clock).fetch(http)

    by_pair = {(quote.base, quote.quote): quote for quote in quotes}
    assert len(quotes) == 12
    # Every digit kept: the number was never a float.
    assert by_pair["USDC", "USD"] == Quote(
        "coingecko", "USDC", "USD", Decimal("0.999912345678901234"), None, None, UPDATED_MS
    )
    assert by_pair["USDT", "JPY"].mid == Decimal(151)  # an integer in the JSON
    assert by_pair["DAI", "CNY"].mid == Decimal("7.1642")

    (target,) = provider_server.requests_to("coingecko")
    query = {name: values[0] for name, values in parse_qs(urlsplit(target).query).items()}
    assert query["ids"] == "tether,usd-coin,dai"
    assert query["include_last_updated_at"] == "true"
    asked = query["vs_currencies"].split(",")
    assert set(asked) == {code.lower() for code in FIAT_MINOR_UNITS} - {"ron", "bgn", "isk"}


async def test_a_stale_price_keeps_its_old_time(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault("coingecko", "stale", stale_s=900)
    quotes = await CoinGeckoSource(provider_server.url_for("coingecko"), clock).fetch(http)
    assert {quote.time_ms for quote in quotes} == {(PROVIDER_TIME_MS - 900_000) // 1000 * 1000}


async def test_a_time_ahead_of_ours_is_the_arrival_time(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.time_ms = NOW_MS + 3_600_000
    quotes = await CoinGeckoSource(provider_server.url_for("coingecko"), clock).fetch(http)
    assert {quote.time_ms for quote in quotes} == {NOW_MS}


async def test_nan_infinity_and_words_are_dropped(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    body = (
        b'{"tether": {"usd": NaN, "eur": Infinity, "cny": "n/a", "jpy": 150.5,'
        b' "last_updated_at": 1699999990}}'
    )
    provider_server.set_fault("coingecko", "raw", body=body)
    quotes = await CoinGeckoSource(provider_server.url_for("coingecko"), clock).fetch(http)
    assert quotes == [
        Quote("coingecko", "USDT", "JPY", Decimal("150.5"), None, None, 1_699_999_990_000)
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'{"tether": {"usd": 1.0}}',  # no last_updated_at
        b'{"tether": {"usd": 1.0, "last_updated_at": "yesterday"}}',
        b'{"tether": {"usd": 1.0, "last_updated_at": 0}}',
        b'{"tether": [1.0]}',
    ],
)
async def test_a_missing_or_impossible_time_is_malformed(
    body: bytes, provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault("coingecko", "raw", body=body)
    with pytest.raises(SourceError) as caught:
        await CoinGeckoSource(provider_server.url_for("coingecko"), clock).fetch(http)
    assert caught.value.fault == SourceFault.MALFORMED


async def test_a_coin_without_prices_leaves_the_others(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    for fiat in ("USD", "EUR", "CNY", "JPY"):
        provider_server.remove_price("coingecko", "DAI", fiat)
    quotes = await CoinGeckoSource(provider_server.url_for("coingecko"), clock).fetch(http)
    assert {quote.base for quote in quotes} == {"USDT", "USDC"}
