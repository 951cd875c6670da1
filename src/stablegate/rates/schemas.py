"""Wire shapes of the rate endpoints (also the OpenAPI schema).

Rates and percentages are decimal strings in their shortest form (``"7.2"``), never JSON
numbers, so no client parses them into floats; times are Unix milliseconds. Response field
names are the wire's camelCase names; request models take only those (any other field is
``unknown_field``, as for orders).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class SourceRateOut(BaseModel):
    """One source's price of the pair, as the engine used it (before adjustments)."""

    source: str
    rate: str
    time: int


class RateOut(BaseModel):
    """A pair's rate: fiat per token (``USDT``/``CNY`` ``"7.2"``: 1 USDT costs 7.2 CNY)."""

    symbol: str
    currency: str
    rate: str
    bid: str | None = Field(description="null when no source quotes one")
    ask: str | None = Field(description="null when no source quotes one")
    sources: list[SourceRateOut]
    time: int = Field(description="the time of the oldest input the rate was computed from")


class RateList(BaseModel):
    rates: list[RateOut]


class MerchantQuoteOut(RateOut):
    """The rate the merchant's next order in this pair would be priced at."""

    rateSource: str = Field(description='as stored on the order, e.g. "median(kraken,okx)"')


class RuleFields(BaseModel):
    """A rule's fields; in a merchant's own rule, null means "inherit"."""

    sources: list[str] | None
    method: str | None
    spreadPct: str | None
    adjust: str | None
    maxAgeSeconds: int | None
    bandPct: str | None
    step: str | None


class MerchantRuleOut(BaseModel):
    symbol: str
    currency: str
    rule: RuleFields = Field(description="the merchant's own override (null fields inherit)")
    effective: RuleFields = Field(
        description="what the pair is priced with: settings <- gateway rule <- this rule"
    )
    updateTime: int


class MerchantRuleList(BaseModel):
    rules: list[MerchantRuleOut]


class DeletedRuleOut(BaseModel):
    symbol: str
    currency: str
    deleted: bool = Field(description="false when the merchant had no rule for the pair")


class PairRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Annotated[StrictStr, Field(min_length=1, max_length=20)]
    currency: Annotated[StrictStr, Field(min_length=1, max_length=20)]


class SetRuleRequest(PairRef):
    """The merchant's override of one pair, replacing any it had; a field left out (or null)
    inherits from the gateway's rule and the settings."""

    sources: Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=20)]] | None,
        Field(min_length=1, max_length=10),
    ] = None
    method: Annotated[StrictStr | None, Field(max_length=10)] = None
    spread_pct: Annotated[StrictStr | None, Field(alias="spreadPct", max_length=40)] = None
    adjust: Annotated[StrictStr | None, Field(max_length=40)] = None
    max_age_s: Annotated[StrictInt | None, Field(alias="maxAgeSeconds")] = None
    band_pct: Annotated[StrictStr | None, Field(alias="bandPct", max_length=40)] = None
    step: Annotated[StrictStr | None, Field(max_length=40)] = None
