"""Binance spot: the best bid and ask of its fiat markets (``GET /api/v3/ticker/bookTicker``).

Binance lists no USD market; it gives the stablecoins against the fiat currencies it trades,
some priced the other way round (EURUSDT is USDT per EUR, so USDT/EUR is its inverse with bid
and ask swapped). The answer carries no time: a quote's time is when the answer arrived.

One unknown symbol fails the whole request (HTTP 400, code -1121), so a delisted market is
found by asking each symbol alone once and is then left out (``answers.ask_listed``).
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx

from stablegate.clock import Clock
from stablegate.rates.quote import Quote
from stablegate.rates.sources.answers import (
    UnlistedPair,
    as_list,
    as_object,
    ask_listed,
    base_url,
    book_quote,
    get_answer,
    malformed,
    parse_json,
    require_quotes,
    status_error,
)

PATH = "/api/v3/ticker/bookTicker"
_INVALID_SYMBOL = -1121

# symbol -> (stablecoin, fiat, whether the market is priced in the stablecoin: fiat first)
MARKETS: dict[str, tuple[str, str, bool]] = {
    "EURUSDT": ("USDT", "EUR", True),
    "EURUSDC": ("USDC", "EUR", True),
    "USDTTRY": ("USDT", "TRY", False),
    "USDTBRL": ("USDT", "BRL", False),
    "USDTPLN": ("USDT", "PLN", False),
    "USDTRON": ("USDT", "RON", False),
    "USDTZAR": ("USDT", "ZAR", False),
    "USDTMXN": ("USDT", "MXN", False),
    "USDTCZK": ("USDT", "CZK", False),
    "USDTJPY": ("USDT", "JPY", False),
}


class BinanceSource:
    name = "binance"

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = base_url(self.name, url) + PATH
        self.clock = clock
        self.unlisted: set[str] = set()  # symbols Binance said it does not list

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        async def ask(symbols: list[str]) -> list[Quote]:
            return await self._book(client, symbols)

        answers = await ask_listed(self.name, list(MARKETS), self.unlisted, ask)
        return require_quotes(self.name, [quote for answer in answers for quote in answer])

    async def _book(self, client: httpx.AsyncClient, symbols: list[str]) -> list[Quote]:
        params = {"symbols": json.dumps(symbols, separators=(",", ":"))}
        status, body = await get_answer(client, self.name, self.url, params)
        if status == 400 and _error_code(body) == _INVALID_SYMBOL:
            raise UnlistedPair
        if not 200 <= status < 300:
            raise status_error(self.name, status, body)
        received_ms = self.clock.now_ms()
        quotes = []
        for item in as_list(self.name, parse_json(self.name, body), "the answer"):
            entry = as_object(self.name, item, "a ticker")
            symbol = entry.get("symbol")
            market = MARKETS.get(symbol) if isinstance(symbol, str) else None
            if market is None:
                continue
            coin, fiat, inverted = market
            if "bidPrice" not in entry or "askPrice" not in entry:
                raise malformed(self.name, f"the {symbol} ticker has no bidPrice or askPrice")
            quote = book_quote(
                self.name,
                coin,
                fiat,
                entry["bidPrice"],
                entry["askPrice"],
                received_ms,
                invert=inverted,
            )
            if quote is not None:
                quotes.append(quote)
        return quotes


def _error_code(body: bytes) -> object:
    """Binance's error code in a refusal (``{"code": -1121, "msg": "Invalid symbol."}``)."""
    try:
        error = json.loads(body, parse_float=Decimal)
    except ValueError:
        return None
    return error.get("code") if isinstance(error, dict) else None
