"""Prometheus gauges of the stored rates, refreshed from the database at scrape time (like the
chain gauges: whichever process fetches, any API process reports what is stored).

- ``stablegate_rate_age_seconds{base,quote,source}``: how old each stored quote is, by the
  provider's own time; pricing refuses a market quote past the rule's maximum age and an ECB
  rate past ``FIAT_MAX_AGE_S``.
- ``stablegate_stablecoin_peg_deviation_percent{symbol}``: the signed distance of the median
  fresh market USD price from 1; the fetcher alerts past ``RATE_PEG_ALERT_PCT``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.config import Settings
from stablegate.rates import store
from stablegate.rates.currencies import STABLECOINS
from stablegate.rates.engine import QuoteBook, peg_deviation_pct


class RateGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.age = Gauge(
            "stablegate_rate_age_seconds",
            "Age of each stored quote by its provider's time",
            ["base", "quote", "source"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.peg_deviation = Gauge(
            "stablegate_stablecoin_peg_deviation_percent",
            "Median fresh market USD price of a stablecoin minus 1, in percent",
            ["symbol"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    async def refresh(self, session: AsyncSession, settings: Settings, now_ms: int) -> None:
        """Set every gauge from the stored quotes; a pair or symbol no longer known is dropped."""
        quotes = await store.latest_quotes(session)
        self.age.clear()
        for quote in quotes:
            age_s = max(0, now_ms - quote.time_ms) / 1000
            self.age.labels(quote.base, quote.quote, quote.source).set(age_s)
        book = QuoteBook(quotes)
        self.peg_deviation.clear()
        for symbol in STABLECOINS:
            deviation = peg_deviation_pct(
                book, symbol, settings.rate_sources, now_ms, settings.rate_max_age_s
            )
            if deviation is not None:
                self.peg_deviation.labels(symbol).set(float(deviation))
