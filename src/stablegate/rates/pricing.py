"""Fiat amount -> token base units at a locked rate, rounded up (the merchant never gets less).

Pure arithmetic on Decimals with a context wide enough for any amount we accept; the rate is
fiat per token (7.2 CNY per USDT), so tokens = fiat / rate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext

from stablegate.errors import InvalidRequest

# Up to 8 decimals: more than any ISO currency's minor unit, as shop plugins send them.
_FIAT = re.compile(r"^(0|[1-9][0-9]{0,17})(?:\.([0-9]{1,8}))?$")
_PRECISION = 120


@dataclass(frozen=True)
class FiatPrice:
    """What an order priced in fiat stores: the locked rate and where it came from."""

    units: int  # the token amount in base units, rounded up
    fiat_amount: Decimal  # as the merchant sent it
    currency: str
    rate: Decimal  # fiat per token, after the rule's adjustments
    rate_source: str  # e.g. "median(coinbase,kraken,okx) spread 1%" or "fixed"
    rate_time_ms: int  # the oldest input the rate was computed from


def parse_fiat_amount(text: str) -> Decimal:
    """``"129.90"`` -> ``Decimal("129.90")``; refuses signs, exponents, zero and 9+ decimals."""
    match = _FIAT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidRequest(
            'amount must be a plain decimal string such as "129.90" (at most 8 decimals)',
            code="invalid_amount",
        )
    value = Decimal(text)
    if value <= 0:
        raise InvalidRequest("amount must be positive", code="invalid_amount")
    return value


def token_units(fiat: Decimal, rate: Decimal, decimals: int, step: Decimal | None = None) -> int:
    """Base units of a token worth ``fiat`` at ``rate``, rounded up to ``step`` token units
    (``Decimal("0.01")``) or, without a step, to the token's smallest unit."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    with localcontext() as context:
        context.prec = _PRECISION
        tokens = fiat / rate
        if step is not None:
            if step <= 0:
                raise ValueError("step must be positive")
            tokens = (tokens / step).to_integral_value(rounding=ROUND_CEILING) * step
        units = (tokens * (Decimal(10) ** decimals)).to_integral_value(rounding=ROUND_CEILING)
    return int(units)


def decimal_text(value: Decimal) -> str:
    """The shortest plain form: ``Decimal("7.200")`` -> ``"7.2"``, never an exponent."""
    with localcontext() as context:
        context.prec = _PRECISION  # normalize() rounds to the context's precision
        return format(value.normalize(), "f")
