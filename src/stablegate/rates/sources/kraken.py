"""Kraken spot: best bid and ask of its stablecoin/fiat markets (``GET /0/public/Ticker``).

The answer is ``{"error": [...], "result": {<pair>: {"a": [ask, ...], "b": [bid, ...], ...}}}``
and keys the result by Kraken's own pair names, which can differ from the names asked for:
``USDTUSD`` comes back as ``USDTZUSD`` (the legacy ``Z`` prefix of fiat assets). An error
starting with ``E`` is a refusal (``HTTP_STATUS``); ``EQuery:Unknown asset pair`` for one pair
refuses the whole request, so a delisted pair is found once and left out
(``answers.ask_listed``). The ticker carries no time: a quote's time is when the answer arrived.
"""

from __future__ import annotations

import httpx

from stablegate.clock import Clock
from stablegate.rates.quote import Quote, SourceError, SourceFault
from stablegate.rates.sources.answers import (
    UnlistedPair,
    as_list,
    as_object,
    ask_listed,
    base_url,
    book_quote,
    get_body,
    malformed,
    parse_json,
    require_quotes,
)

PATH = "/0/public/Ticker"

# The pairs asked for, by the names Kraken accepts: stablecoin + fiat.
PAIRS: tuple[tuple[str, str], ...] = (
    *(("USDT", fiat) for fiat in ("USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY")),
    *(("USDC", fiat) for fiat in ("USD", "EUR", "GBP")),
    *(("DAI", fiat) for fiat in ("USD", "EUR")),
)


def result_names(coin: str, fiat: str) -> tuple[str, ...]:
    """The names Kraken may key a pair's result by: the plain one or an X/Z-prefixed one."""
    return (coin + fiat, coin + "Z" + fiat, "X" + coin + "Z" + fiat, "X" + coin + fiat)


class KrakenSource:
    name = "kraken"

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = base_url(self.name, url) + PATH
        self.clock = clock
        self.unlisted: set[str] = set()  # pairs Kraken said it does not list

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        async def ask(pairs: list[str]) -> list[Quote]:
            return await self._tickers(client, pairs)

        names = [coin + fiat for coin, fiat in PAIRS]
        answers = await ask_listed(self.name, names, self.unlisted, ask)
        return require_quotes(self.name, [quote for answer in answers for quote in answer])

    async def _tickers(self, client: httpx.AsyncClient, names: list[str]) -> list[Quote]:
        body = await get_body(client, self.name, self.url, {"pair": ",".join(names)})
        received_ms = self.clock.now_ms()
        answer = as_object(self.name, parse_json(self.name, body), "the answer")
        errors = [
            str(error)
            for error in as_list(self.name, answer.get("error"), "error")
            if str(error).startswith("E")  # "W..." entries are warnings
        ]
        if any("Unknown asset pair" in error for error in errors):
            raise UnlistedPair
        if errors:
            raise SourceError(self.name, SourceFault.HTTP_STATUS, "; ".join(errors)[:200])
        result = as_object(self.name, answer.get("result"), "result")
        quotes = []
        for coin, fiat in PAIRS:
            if coin + fiat not in names:
                continue
            key = next((name for name in result_names(coin, fiat) if name in result), None)
            if key is None:
                continue
            ticker = as_object(self.name, result[key], f"the {key} ticker")
            ask = as_list(self.name, ticker.get("a"), f"{key}.a")
            bid = as_list(self.name, ticker.get("b"), f"{key}.b")
            if not ask or not bid:
                raise malformed(self.name, f"the {key} ticker has an empty bid or ask")
            quote = book_quote(self.name, coin, fiat, bid[0], ask[0], received_ms)
            if quote is not None:
                quotes.append(quote)
        return quotes
