"""The engine's values as the rate endpoints send them (decimals as shortest strings)."""

from __future__ import annotations

from decimal import Decimal

from stablegate.rates.engine import PairRate
from stablegate.rates.pricing import decimal_text
from stablegate.rates.schemas import MerchantQuoteOut, RateOut, SourceRateOut


def _text(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def rate_out(pair: PairRate) -> RateOut:
    return RateOut(
        symbol=pair.symbol,
        currency=pair.currency,
        rate=decimal_text(pair.rate),
        bid=_text(pair.bid),
        ask=_text(pair.ask),
        sources=[
            SourceRateOut(source=s.source, rate=decimal_text(s.rate), time=s.time_ms)
            for s in pair.sources
        ],
        time=pair.time_ms,
    )


def merchant_quote_out(pair: PairRate) -> MerchantQuoteOut:
    return MerchantQuoteOut(**rate_out(pair).model_dump(), rateSource=pair.label)
