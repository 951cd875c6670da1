"""The fiat currencies orders may be priced in, and the stablecoins with a market price.

Every currency here has a daily ECB reference rate (or is its base, EUR), so a cross through USD
is always possible. The number is ISO 4217's minor unit: how many decimals a price shows.
"""

from __future__ import annotations

FIAT_MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "CNY": 2, "GBP": 2, "JPY": 0, "HKD": 2, "SGD": 2, "AUD": 2,
    "CAD": 2, "CHF": 2, "KRW": 0, "INR": 2, "BRL": 2, "MXN": 2, "TRY": 2, "THB": 2,
    "IDR": 2, "MYR": 2, "PHP": 2, "NZD": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
    "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "ISK": 0, "ILS": 2, "ZAR": 2,
}  # fmt: skip

# The tokens a market prices against USD; a registry token outside this set has no fiat price.
STABLECOINS: tuple[str, ...] = ("USDT", "USDC", "DAI")


def is_fiat(code: str) -> bool:
    return code in FIAT_MINOR_UNITS
