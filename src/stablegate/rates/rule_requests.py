"""A merchant's ``setRule`` body checked field by field: every problem is 400
``invalid_rate_rule`` naming the field, before anything is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from stablegate.config import Settings
from stablegate.errors import InvalidRequest
from stablegate.rates.rules import parse_adjust
from stablegate.rates.schemas import SetRuleRequest

METHODS = ("median", "first")
# Plain decimals only: no sign, exponent, NaN or non-ASCII digits.
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,18})?")
MAX_SPREAD_PCT = Decimal(50)  # exclusive: a spread of half the price is a typo
MAX_BAND_PCT = Decimal(50)
MAX_AGE_S = (10, 86_400)
MAX_STEP = Decimal(100)


@dataclass(frozen=True)
class RuleChange:
    """The checked fields of one pair's override; None inherits."""

    symbol: str
    currency: str
    sources: list[str] | None
    method: str | None
    spread_pct: Decimal | None
    adjust: str | None
    max_age_s: int | None
    band_pct: Decimal | None
    step: Decimal | None


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", code="invalid_rate_rule")


def _decimal(field: str, text: str | None) -> Decimal | None:
    if text is None:
        return None
    if not _DECIMAL.fullmatch(text):
        raise _invalid(field, 'a plain decimal string such as "1.5" is expected')
    return Decimal(text)


def checked_rule(req: SetRuleRequest, symbol: str, currency: str, settings: Settings) -> RuleChange:
    """``req`` with every field checked (``symbol`` and ``currency`` already canonical)."""
    if req.sources is not None:
        unknown = [s for s in req.sources if s not in settings.rate_sources]
        if unknown:
            offered = ", ".join(settings.rate_sources) or "none (fixed rates only)"
            raise _invalid("sources", f"{unknown[0][:20]!r} is not a source of this gateway: {offered}")
        if len(set(req.sources)) != len(req.sources):
            raise _invalid("sources", "a source is named twice")
    if req.method is not None and req.method not in METHODS:
        raise _invalid("method", f"one of {', '.join(METHODS)}")
    spread = _decimal("spreadPct", req.spread_pct)
    if spread is not None and spread >= MAX_SPREAD_PCT:
        raise _invalid("spreadPct", f"must be below {MAX_SPREAD_PCT}")
    band = _decimal("bandPct", req.band_pct)
    if band is not None and not 0 < band <= MAX_BAND_PCT:
        raise _invalid("bandPct", f"must be above 0 and at most {MAX_BAND_PCT}")
    step = _decimal("step", req.step)
    if step is not None and not 0 < step <= MAX_STEP:
        raise _invalid("step", f"must be above 0 and at most {MAX_STEP}")
    if req.max_age_s is not None and not MAX_AGE_S[0] <= req.max_age_s <= MAX_AGE_S[1]:
        raise _invalid("maxAgeSeconds", f"from {MAX_AGE_S[0]} to {MAX_AGE_S[1]}")
    adjust = None
    if req.adjust is not None:
        parse_adjust(req.adjust)  # invalid_rate_rule when it is not one of the forms
        adjust = req.adjust
    return RuleChange(
        symbol=symbol,
        currency=currency,
        sources=req.sources,
        method=req.method,
        spread_pct=spread,
        adjust=adjust,
        max_age_s=req.max_age_s,
        band_pct=band,
        step=step,
    )
