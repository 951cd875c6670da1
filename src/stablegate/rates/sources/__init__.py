"""Rate sources: one small adapter per provider, each turning its answer into ``Quote`` values.

Every adapter has a ``name`` and ``async fetch(client) -> list[Quote]``: all the pairs it can
give, stablecoins (USDT, USDC, DAI) against the fiat currencies of ``rates.currencies`` it
quotes (the ECB: EUR against each). It is built with its base URL (``STABLEGATE_RATE_*_URL``,
for a proxy or a local test server) and a clock (a quote without a provider time is stamped
with the time its answer arrived). Timeouts are the caller's client's. A failed request or an
unreadable answer raises ``SourceError``; an invalid price is dropped and never returned, and
nothing valid left is ``SourceError(INVALID_PRICE)`` (``sources/answers.py`` has the rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import httpx

from stablegate.clock import Clock, SystemClock
from stablegate.config import Settings
from stablegate.rates.quote import Quote
from stablegate.rates.sources.binance import BinanceSource
from stablegate.rates.sources.coinbase import CoinbaseSource
from stablegate.rates.sources.coingecko import CoinGeckoSource
from stablegate.rates.sources.ecb import EcbSource
from stablegate.rates.sources.kraken import KrakenSource
from stablegate.rates.sources.okx import OkxSource


class RateSource(Protocol):
    @property
    def name(self) -> str: ...

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]: ...


# The market sources a rule may name, each built from its URL setting.
MARKET_SOURCES: dict[str, Callable[[Settings, Clock], RateSource]] = {
    "binance": lambda settings, clock: BinanceSource(settings.rate_binance_url, clock),
    "coinbase": lambda settings, clock: CoinbaseSource(settings.rate_coinbase_url, clock),
    "coingecko": lambda settings, clock: CoinGeckoSource(settings.rate_coingecko_url, clock),
    "kraken": lambda settings, clock: KrakenSource(settings.rate_kraken_url, clock),
    "okx": lambda settings, clock: OkxSource(settings.rate_okx_url, clock),
}
FIAT_REFERENCE = "ecb"


def build_sources(settings: Settings, clock: Clock | None = None) -> list[RateSource]:
    """The sources of ``settings.rate_sources``, in that order, then the ECB reference (always
    fetched: every cross goes through it). An unknown or repeated name, or an invalid base URL,
    is a ``ValueError`` at start-up."""
    clock = clock if clock is not None else SystemClock()
    unknown = [name for name in settings.rate_sources if name not in MARKET_SOURCES]
    if unknown:
        known = ", ".join(sorted(MARKET_SOURCES))
        raise ValueError(
            f"STABLEGATE_RATE_SOURCES: unknown source {', '.join(unknown)} (known: {known}; "
            f"the {FIAT_REFERENCE} reference is always used)"
        )
    names = settings.rate_sources
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"STABLEGATE_RATE_SOURCES: {', '.join(repeated)} listed twice")
    sources = [MARKET_SOURCES[name](settings, clock) for name in names]
    return [*sources, EcbSource(settings.rate_ecb_url, clock)]
