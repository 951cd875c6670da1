"""Decimal strings at the edges, integer base units inside. Never floats."""

from __future__ import annotations

import re

from stablegate.errors import InvalidRequest

_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,39})(?:\.([0-9]{1,40}))?$")


def parse_amount(text: str, decimals: int) -> int:
    """``"12.5"`` with 6 decimals -> ``12500000``. Rejects signs, exponents and excess digits."""
    if not isinstance(text, str):
        raise InvalidRequest("amount must be a decimal string", code="invalid_amount")
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InvalidRequest(
            'amount must be a plain decimal string such as "12.50"', code="invalid_amount"
        )
    whole: str = match.group(1)
    fraction: str = match.group(2) or ""
    if len(fraction) > decimals:
        raise InvalidRequest(
            f"amount has more than {decimals} decimal places for this token",
            code="invalid_amount",
        )
    units: int = int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    return units


def format_amount(units: int, decimals: int) -> str:
    """``12500000`` with 6 decimals -> ``"12.5"`` (no trailing zeros, no exponent)."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**decimals)
    if decimals == 0 or fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(fraction).rjust(decimals, '0').rstrip('0')}"
