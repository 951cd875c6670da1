"""Coinbase: one exchange-rates request per stablecoin; a failed one leaves the others."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from structlog.testing import capture_logs
from tests.rates.provider_server import ProviderServer
from tests.rates.sources.conftest import NOW_MS

from stablegate.clock import FakeClock
from stablegate.rates.quote import Quote, SourceError, SourceFault
from stablegate.rates.sources.coinbase import CoinbaseSource


async def test_quotes_each_stablecoin_in_every_fiat_currency_it_lists(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_price("coinbase", "USDT", "CNY", "7.2012")
    quotes = await CoinbaseSource(provider_server.url_for("coinbase"), clock).fetch(http)

    by_pair = {(quote.base, quote.quote): quote for quote in quotes}
    assert by_pair["USDT", "CNY"] == Quote(
        "coinbase", "USDT", "CNY", Decimal("7.2012"), None, None, NOW_MS
    )
    assert by_pair["USDC", "USD"].mid == Decimal("1")
    assert by_pair["DAI", "JPY"].mid == Decimal("150.70")
    # Four fiat currencies of three coins; USDT's BTC rate is not a fiat price.
    assert len(quotes) == 12
    assert ("USDT", "BTC") not in by_pair
    assert sorted(provider_server.requests_to("coinbase")) == [
        "/v2/exchange-rates?currency=DAI",
        "/v2/exchange-rates?currency=USDC",
        "/v2/exchange-rates?currency=USDT",
    ]


async def test_one_failed_request_leaves_the_other_coins(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    provider_server.set_fault("coinbase", "status_503", match="currency=DAI")
    with capture_logs() as logs:
        quotes = await CoinbaseSource(provider_server.url_for("coinbase"), clock).fetch(http)

    assert {quote.base for quote in quotes} == {"USDT", "USDC"}
    (failed,) = [log for log in logs if log["event"] == "rate_request_failed"]
    assert failed["fault"] == "http_status"


async def test_the_rates_of_another_currency_are_malformed(
    provider_server: ProviderServer, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    body = json.dumps({"data": {"currency": "USD", "rates": {"EUR": "0.92"}}}).encode()
    provider_server.set_fault("coinbase", "raw", body=body)
    with pytest.raises(SourceError) as caught:
        await CoinbaseSource(provider_server.url_for("coinbase"), clock).fetch(http)
    assert caught.value.fault == SourceFault.MALFORMED
