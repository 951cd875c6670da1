"""OKX: its index price of each stablecoin in USD, and USD in CNY.

- ``GET /api/v5/market/index-tickers?quoteCcy=USD``: every USD index, answered
  ``{"code": "0", "msg": "", "data": [{"instId": "USDT-USD", "idxPx": "0.99985",
  "ts": "1712345678901", ...}, ...]}``; USDT-USD, USDC-USD and DAI-USD are read (one request
  for all, so an index OKX drops is simply absent). The time is the index's ``ts`` (ms).
- ``GET /api/v5/market/exchange-rate``: ``{"code": "0", "data": [{"usdCny": "7.1234"}]}``,
  OKX's USD/CNY rate (no time of its own), which makes each USD index price a CNY one:
  S/CNY = S/USD index x usdCny, at the index's time. If this request fails, the USD quotes
  still stand (the failure is logged).

A ``code`` other than ``"0"`` is OKX refusing the request (``HTTP_STATUS``). No bid or ask.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx

from stablegate.clock import Clock
from stablegate.rates.currencies import STABLECOINS
from stablegate.rates.quote import Quote, SourceError, SourceFault
from stablegate.rates.sources.answers import (
    as_list,
    as_object,
    base_url,
    get_body,
    log_failed_request,
    malformed,
    parse_json,
    read_price,
    read_time_ms,
    require_quotes,
)

INDEX_PATH = "/api/v5/market/index-tickers"
EXCHANGE_RATE_PATH = "/api/v5/market/exchange-rate"
INDICES: dict[str, str] = {f"{coin}-USD": coin for coin in STABLECOINS}


class OkxSource:
    name = "okx"

    def __init__(self, url: str, clock: Clock) -> None:
        root = base_url(self.name, url)
        self.index_url = root + INDEX_PATH
        self.exchange_rate_url = root + EXCHANGE_RATE_PATH
        self.clock = clock

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        index, usd_cny = await asyncio.gather(
            self._index(client), self._usd_cny(client), return_exceptions=True
        )
        if isinstance(index, BaseException):
            raise index
        if isinstance(usd_cny, SourceError):
            log_failed_request(self.name, usd_cny)
            usd_cny = None
        elif isinstance(usd_cny, BaseException):
            raise usd_cny
        quotes = require_quotes(self.name, index)
        if usd_cny is None:
            return quotes
        return quotes + [
            Quote(self.name, quote.base, "CNY", quote.mid * usd_cny, None, None, quote.time_ms)
            for quote in quotes
        ]

    async def _data(
        self, client: httpx.AsyncClient, url: str, params: dict[str, str]
    ) -> list[object]:
        body = await get_body(client, self.name, url, params)
        answer = as_object(self.name, parse_json(self.name, body), "the answer")
        if answer.get("code") != "0":
            message = f"code {str(answer.get('code'))[:10]}: {str(answer.get('msg'))[:150]}"
            raise SourceError(self.name, SourceFault.HTTP_STATUS, message)
        return as_list(self.name, answer.get("data"), "data")

    async def _index(self, client: httpx.AsyncClient) -> list[Quote]:
        data = await self._data(client, self.index_url, {"quoteCcy": "USD"})
        received_ms = self.clock.now_ms()
        quotes = []
        for item in data:
            entry = as_object(self.name, item, "an index ticker")
            coin = INDICES.get(str(entry.get("instId")))
            if coin is None:
                continue
            if "idxPx" not in entry or "ts" not in entry:
                raise malformed(self.name, f"the {coin}-USD index has no idxPx or ts")
            time_ms = read_time_ms(self.name, entry["ts"], unit_ms=1, received_ms=received_ms)
            price = read_price(self.name, entry["idxPx"], f"{coin}/USD")
            if price is not None:
                quotes.append(Quote(self.name, coin, "USD", price, None, None, time_ms))
        return quotes

    async def _usd_cny(self, client: httpx.AsyncClient) -> Decimal | None:
        data = await self._data(client, self.exchange_rate_url, {})
        if not data:
            raise malformed(self.name, "exchange-rate data is empty")
        entry = as_object(self.name, data[0], "an exchange rate")
        if "usdCny" not in entry:
            raise malformed(self.name, "the exchange rate has no usdCny")
        return read_price(self.name, entry["usdCny"], "USD/CNY")
