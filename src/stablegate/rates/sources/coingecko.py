"""CoinGecko: its aggregated price of each stablecoin (``GET /api/v3/simple/price``).

One request for every coin and currency:
``?ids=tether,usd-coin,dai&vs_currencies=usd,eur,...&include_last_updated_at=true``, answered
``{"tether": {"usd": 1.0002, "eur": 0.9216, "last_updated_at": 1712345678}, ...}``: prices
are JSON numbers (read as ``Decimal``, never float) and the time is in seconds. CoinGecko
quotes no RON, BGN or ISK, so those are not asked for. No bid or ask.
"""

from __future__ import annotations

import httpx

from stablegate.clock import Clock
from stablegate.rates.currencies import FIAT_MINOR_UNITS
from stablegate.rates.quote import Quote
from stablegate.rates.sources.answers import (
    as_object,
    base_url,
    get_body,
    malformed,
    parse_json,
    read_price,
    read_time_ms,
    require_quotes,
)

PATH = "/api/v3/simple/price"

COIN_IDS: dict[str, str] = {"tether": "USDT", "usd-coin": "USDC", "dai": "DAI"}
NOT_QUOTED = frozenset({"RON", "BGN", "ISK"})  # absent from /simple/supported_vs_currencies
VS_CURRENCIES: tuple[str, ...] = tuple(code for code in FIAT_MINOR_UNITS if code not in NOT_QUOTED)


class CoinGeckoSource:
    name = "coingecko"

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = base_url(self.name, url) + PATH
        self.clock = clock

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        params = {
            "ids": ",".join(COIN_IDS),
            "vs_currencies": ",".join(code.lower() for code in VS_CURRENCIES),
            "include_last_updated_at": "true",
        }
        body = await get_body(client, self.name, self.url, params)
        received_ms = self.clock.now_ms()
        answer = as_object(self.name, parse_json(self.name, body), "the answer")
        quotes = []
        for coin_id, coin in COIN_IDS.items():
            if coin_id not in answer:
                continue  # a coin CoinGecko has no price for right now
            prices = as_object(self.name, answer[coin_id], coin_id)
            if "last_updated_at" not in prices:
                raise malformed(self.name, f"{coin_id} has no last_updated_at")
            time_ms = read_time_ms(
                self.name, prices["last_updated_at"], unit_ms=1000, received_ms=received_ms
            )
            for fiat in VS_CURRENCIES:
                if fiat.lower() not in prices:
                    continue
                price = read_price(self.name, prices[fiat.lower()], f"{coin}/{fiat}")
                if price is not None:
                    quotes.append(Quote(self.name, coin, fiat, price, None, None, time_ms))
        return require_quotes(self.name, quotes)
