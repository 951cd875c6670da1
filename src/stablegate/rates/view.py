"""The engine's values and the stored rules as the rate endpoints send them (decimals as
shortest strings, times in Unix milliseconds)."""

from __future__ import annotations

from decimal import Decimal

from stablegate.config import Settings
from stablegate.models.rate import RateRule
from stablegate.rates.engine import PairRate
from stablegate.rates.pricing import decimal_text
from stablegate.rates.rules import PairRule, effective_rule
from stablegate.rates.schemas import (
    MerchantQuoteOut,
    MerchantRuleOut,
    RateOut,
    RuleFields,
    SourceRateOut,
)


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


def stored_fields(row: RateRule | None) -> RuleFields:
    """A stored rule's own fields (all null without a row)."""
    if row is None:
        return RuleFields(
            sources=None,
            method=None,
            spreadPct=None,
            adjust=None,
            maxAgeSeconds=None,
            bandPct=None,
            step=None,
        )
    return RuleFields(
        sources=None if row.sources is None else list(row.sources),
        method=row.method,
        spreadPct=row.spread_pct,
        adjust=row.adjust,
        maxAgeSeconds=row.max_age_s,
        bandPct=row.band_pct,
        step=row.step,
    )


def effective_fields(rule: PairRule) -> RuleFields:
    return RuleFields(
        sources=list(rule.sources),
        method=rule.method.value,
        spreadPct=decimal_text(rule.spread_pct),
        adjust=None if rule.adjust is None else rule.adjust.text,
        maxAgeSeconds=rule.max_age_s,
        bandPct=decimal_text(rule.band_pct),
        step=_text(rule.step),
    )


def merchant_rule_out(
    settings: Settings,
    symbol: str,
    currency: str,
    gateway: RateRule | None,
    merchant: RateRule | None,
    updated_at_ms: int,
) -> MerchantRuleOut:
    effective = effective_rule(settings, symbol, currency, gateway, merchant)
    return MerchantRuleOut(
        symbol=symbol,
        currency=currency,
        rule=stored_fields(merchant),
        effective=effective_fields(effective),
        updateTime=updated_at_ms,
    )
