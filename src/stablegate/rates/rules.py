"""A pair's pricing rule: which sources, how they combine, and the adjustments after.

The settings are every pair's defaults; a gateway rule (``rate_rules`` row, scope ``""``)
overrides them per pair and a merchant's rule overrides that, field by field: a null field
inherits. Adjustments use the forms merchants of BEpusdt know: ``7.4`` a fixed rate, ``~0.98`` a
multiplier, ``+0.3`` / ``-0.3`` an addend.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from stablegate.config import Settings
from stablegate.errors import InvalidRequest
from stablegate.models.rate import RateRule

# The market sources a rule may name (rates/sources/ has one adapter each); the ECB is the fiat
# reference every cross uses, never a market source.
MARKET_SOURCES: tuple[str, ...] = ("binance", "okx", "kraken", "coinbase", "coingecko")
REFERENCE_SOURCE = "ecb"

_NUMBER = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,12})?$")
_ADJUST = re.compile(r"^([~+-]?)([0-9]{1,12}(?:\.[0-9]{1,12})?)$")


class Method(StrEnum):
    MEDIAN = "median"  # the median of every source with a usable price
    FIRST = "first"  # the first source, in the rule's order, with a usable price


class AdjustKind(StrEnum):
    FIXED = "fixed"  # replaces the market rate: no source needed
    MULTIPLY = "multiply"
    ADD = "add"


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_rate_rule")


@dataclass(frozen=True)
class Adjustment:
    kind: AdjustKind
    value: Decimal  # the fixed rate, the factor, or the signed addend

    def apply(self, rate: Decimal) -> Decimal:
        if self.kind == AdjustKind.FIXED:
            return self.value
        if self.kind == AdjustKind.MULTIPLY:
            return rate * self.value
        return rate + self.value

    @property
    def text(self) -> str:
        """The form it was written in: ``7.4``, ``~0.98``, ``+0.3``, ``-0.3``."""
        number = format(abs(self.value).normalize(), "f")
        if self.kind == AdjustKind.FIXED:
            return number
        if self.kind == AdjustKind.MULTIPLY:
            return f"~{number}"
        return f"{'-' if self.value < 0 else '+'}{number}"


def parse_adjust(text: str) -> Adjustment:
    """``"7.4"`` fixed, ``"~0.98"`` multiply, ``"+0.3"``/``"-0.3"`` add; anything else is 400
    ``invalid_rate_rule``. A fixed rate or a factor must be positive."""
    match = _ADJUST.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise _invalid(
            f"adjust {text!r} is not one of: a fixed rate (7.4), a multiplier (~0.98), "
            "an addend (+0.3 or -0.3)"
        )
    sign, number = match.groups()
    value = Decimal(number)
    if sign == "~":
        if value <= 0:
            raise _invalid("a multiplier must be positive")
        return Adjustment(AdjustKind.MULTIPLY, value)
    if sign in {"+", "-"}:
        return Adjustment(AdjustKind.ADD, -value if sign == "-" else value)
    if value <= 0:
        raise _invalid("a fixed rate must be positive")
    return Adjustment(AdjustKind.FIXED, value)


def parse_percent(text: str, name: str, *, high: Decimal, allow_zero: bool = True) -> Decimal:
    """A percentage as a plain decimal string in [0, high) (above 0 unless ``allow_zero``)."""
    if not isinstance(text, str) or not _NUMBER.fullmatch(text.strip()):
        raise _invalid(f"{name} must be a plain decimal number of percent, such as 1.5")
    value = Decimal(text.strip())
    if value >= high or (value == 0 and not allow_zero):
        low = "0" if allow_zero else "above 0"
        raise _invalid(f"{name} must be from {low} to below {high}")
    return value


def parse_step(text: str) -> Decimal:
    """The rounding step of token amounts, e.g. ``0.01``: positive, at most 1."""
    try:
        value = Decimal(text.strip()) if _NUMBER.fullmatch(text.strip()) else None
    except (InvalidOperation, AttributeError):
        value = None
    if value is None or value <= 0 or value > 1:
        raise _invalid("step must be a decimal number above 0 and at most 1, such as 0.01")
    return value


def check_sources(names: Sequence[str]) -> tuple[str, ...]:
    """Known market source names, each once, in the given order."""
    unknown = [name for name in names if name not in MARKET_SOURCES]
    if unknown:
        raise _invalid(f"unknown rate source {unknown[0]!r}; known: {', '.join(MARKET_SOURCES)}")
    if len(set(names)) != len(names):
        raise _invalid("a source is named twice")
    return tuple(names)


def check_method(text: str) -> Method:
    try:
        return Method(text)
    except ValueError:
        raise _invalid("method must be median or first") from None


def check_max_age(seconds: int) -> int:
    if not 10 <= seconds <= 7 * 86400:
        raise _invalid("maxAgeSeconds must be from 10 to 604800")
    return seconds


@dataclass(frozen=True)
class PairRule:
    """The rule in force for one (token, currency), every field resolved."""

    symbol: str
    currency: str
    sources: tuple[str, ...]
    method: Method
    spread_pct: Decimal
    adjust: Adjustment | None
    max_age_s: int
    band_pct: Decimal
    step: Decimal | None  # round token amounts up to this; None: the token's smallest unit
    changed_at_ms: int | None  # when a stored rule last changed it (a fixed rate's time)


def effective_rule(
    settings: Settings,
    symbol: str,
    currency: str,
    gateway: RateRule | None = None,
    merchant: RateRule | None = None,
) -> PairRule:
    """Settings, then the gateway's row, then the merchant's: the last non-null field wins.

    Stored values were validated when they were set; they are parsed again here so a row
    edited by hand fails loudly rather than pricing with garbage."""
    sources = tuple(settings.rate_sources)
    method = check_method(settings.rate_method)
    spread = settings.rate_spread_pct
    adjust: Adjustment | None = None
    max_age = settings.rate_max_age_s
    band = settings.rate_band_pct
    step: Decimal | None = None
    changed: int | None = None
    for row in (gateway, merchant):
        if row is None:
            continue
        changed = max(changed or 0, row.updated_at_ms)
        if row.sources is not None:
            sources = check_sources(row.sources)
        if row.method is not None:
            method = check_method(row.method)
        if row.spread_pct is not None:
            spread = parse_percent(row.spread_pct, "spreadPct", high=Decimal(50))
        if row.adjust is not None:
            adjust = parse_adjust(row.adjust)
        if row.max_age_s is not None:
            max_age = check_max_age(row.max_age_s)
        if row.band_pct is not None:
            band = parse_percent(row.band_pct, "bandPct", high=Decimal(50), allow_zero=False)
        if row.step is not None:
            step = parse_step(row.step)
    return PairRule(
        symbol=symbol,
        currency=currency,
        sources=sources,
        method=method,
        spread_pct=spread,
        adjust=adjust,
        max_age_s=max_age,
        band_pct=band,
        step=step,
        changed_at_ms=changed,
    )
