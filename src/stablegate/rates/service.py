"""Rates for the order path and the rates API: stored quotes under each pair's rule.

One :class:`Rates` per process. It reads the stored quotes through a cache of a couple of
seconds (a burst of orders reads them once) and the pair's rules from the caller's session;
it never calls a provider: the fetcher (rates/fetcher.py) stores what it reads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stablegate.clock import Clock
from stablegate.config import Settings
from stablegate.errors import InvalidRequest, RateUnavailable
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store
from stablegate.rates.currencies import FIAT_MINOR_UNITS, STABLECOINS
from stablegate.rates.engine import Limits, PairRate, QuoteBook, price_pair
from stablegate.rates.pricing import FiatPrice, token_units
from stablegate.rates.rules import PairRule, effective_rule


def check_pair(symbol: str, currency: str) -> None:
    """400 ``unsupported_currency`` unless the token has a market price and the currency is
    one we price in."""
    if currency not in FIAT_MINOR_UNITS:
        raise InvalidRequest(
            f"currency {currency!r} is not supported; use an ISO 4217 code such as "
            f"{', '.join(list(FIAT_MINOR_UNITS)[:6])}",
            code="unsupported_currency",
        )
    if symbol not in STABLECOINS:
        raise InvalidRequest(
            f"{symbol} has no fiat price; fiat amounts are for {', '.join(STABLECOINS)}",
            code="unsupported_currency",
        )


class Rates:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        *,
        cache_seconds: float = 2.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.limits = Limits(
            fiat_max_age_s=settings.fiat_max_age_s, sanity_pct=settings.rate_sanity_pct
        )
        self._cache_seconds = cache_seconds
        self._book: QuoteBook | None = None
        self._book_at = 0.0

    def forget(self) -> None:
        """Drop the cached quotes: the next read goes to the database."""
        self._book = None

    async def book(self, session: AsyncSession) -> QuoteBook:
        # Wall-clock monotonic age, not the gateway clock: the cache bounds database reads,
        # it decides nothing about a quote's freshness (the engine does, on the gateway clock).
        now = time.monotonic()
        if self._book is None or now - self._book_at > self._cache_seconds:
            self._book = QuoteBook(await store.latest_quotes(session))
            self._book_at = now
        return self._book

    async def rule(
        self, session: AsyncSession, merchant_id: str | None, symbol: str, currency: str
    ) -> PairRule:
        gateway, merchant = await store.rules_for(session, merchant_id, symbol, currency)
        return effective_rule(self.settings, symbol, currency, gateway, merchant)

    async def pair_rate(
        self, session: AsyncSession, merchant_id: str | None, symbol: str, currency: str
    ) -> PairRate:
        """The rate an order of this merchant (None: the gateway's) would be priced at now."""
        check_pair(symbol, currency)
        rule = await self.rule(session, merchant_id, symbol, currency)
        return price_pair(await self.book(session), rule, self.clock.now_ms(), self.limits)

    async def price_order(
        self,
        session: AsyncSession,
        merchant_id: str,
        symbol: str,
        decimals: int,
        currency: str,
        fiat_amount: Decimal,
    ) -> FiatPrice:
        """The token amount of ``fiat_amount`` at the current rate, rounded up, and that rate."""
        check_pair(symbol, currency)
        rule = await self.rule(session, merchant_id, symbol, currency)
        rate = price_pair(await self.book(session), rule, self.clock.now_ms(), self.limits)
        units = token_units(fiat_amount, rate.rate, decimals, rule.step)
        if units <= 0:
            raise RateUnavailable(f"{fiat_amount} {currency} is less than one token unit")
        return FiatPrice(
            units=units,
            fiat_amount=fiat_amount,
            currency=currency,
            rate=rate.rate,
            rate_source=rate.label,
            rate_time_ms=rate.time_ms,
        )

    async def public_rates(
        self, session: AsyncSession, symbols: Iterable[str] = STABLECOINS
    ) -> list[PairRate]:
        """Every (token, currency) the gateway prices under its own rules; pairs with no
        usable rate are left out."""
        book = await self.book(session)
        now = self.clock.now_ms()
        rules = {(r.symbol, r.currency): r for r in await store.rules_of(session, GATEWAY_SCOPE)}
        found: list[PairRate] = []
        for symbol in symbols:
            if symbol not in STABLECOINS:
                continue
            for currency in FIAT_MINOR_UNITS:
                row = rules.get((symbol, currency))
                rule = effective_rule(self.settings, symbol, currency, row)
                try:
                    found.append(price_pair(book, rule, now, self.limits))
                except RateUnavailable:
                    continue
        return found
