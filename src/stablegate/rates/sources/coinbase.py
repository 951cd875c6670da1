"""Coinbase: what one stablecoin is worth in every currency (``GET /v2/exchange-rates``).

One request per stablecoin, ``?currency=USDT``, answered with
``{"data": {"currency": "USDT", "rates": {"USD": "1.0001", "EUR": "0.9214", ...}}}``: each rate
is the price of one USDT in that currency, as text. Every fiat currency we price in is read;
the rest (other tokens) is ignored. No bid, ask or time: a quote's time is when its answer
arrived. A stablecoin whose request fails is logged and left out; all failing is the first
failure.
"""

from __future__ import annotations

import asyncio

import httpx

from stablegate.clock import Clock
from stablegate.rates.currencies import FIAT_MINOR_UNITS, STABLECOINS
from stablegate.rates.quote import Quote
from stablegate.rates.sources.answers import (
    as_object,
    base_url,
    gather_quotes,
    get_body,
    malformed,
    parse_json,
    read_price,
    require_quotes,
)

PATH = "/v2/exchange-rates"


class CoinbaseSource:
    name = "coinbase"

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = base_url(self.name, url) + PATH
        self.clock = clock

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        answers = await asyncio.gather(
            *(self._rates(client, coin) for coin in STABLECOINS), return_exceptions=True
        )
        return require_quotes(self.name, gather_quotes(self.name, answers))

    async def _rates(self, client: httpx.AsyncClient, coin: str) -> list[Quote]:
        body = await get_body(client, self.name, self.url, {"currency": coin})
        received_ms = self.clock.now_ms()
        answer = as_object(self.name, parse_json(self.name, body), "the answer")
        data = as_object(self.name, answer.get("data"), "data")
        if data.get("currency") != coin:
            answered = str(data.get("currency"))[:10]
            raise malformed(self.name, f"asked for {coin}'s rates, answered {answered}'s")
        rates = as_object(self.name, data.get("rates"), "data.rates")
        quotes = []
        for fiat in FIAT_MINOR_UNITS:
            if fiat not in rates:
                continue
            price = read_price(self.name, rates[fiat], f"{coin}/{fiat}")
            if price is not None:
                quotes.append(Quote(self.name, coin, fiat, price, None, None, received_ms))
        return quotes
