"""Which (token, currency) pairs this gateway prices: a stablecoin of the chain registry (on a
chain the gateway has an RPC for, so orders can be taken in it) against a fiat currency of
:data:`~stablegate.rates.currencies.FIAT_MINOR_UNITS`."""

from __future__ import annotations

from stablegate.chain.registry import ChainRegistry
from stablegate.errors import InvalidRequest
from stablegate.rates.currencies import FIAT_MINOR_UNITS, STABLECOINS


def priced_symbols(registry: ChainRegistry) -> list[str]:
    """The stablecoins some usable chain of the registry carries, in STABLECOINS' order."""
    chains = registry.with_rpc()
    return [s for s in STABLECOINS if any(c.token_by_symbol(s) is not None for c in chains)]


def require_pair(registry: ChainRegistry, symbol: str, currency: str) -> tuple[str, str]:
    """``(symbol, currency)`` in their canonical (upper-case) spelling, or 400
    ``unsupported_currency``. Either may be sent in any case: ``usdt``, ``cny``."""
    wanted_symbol, wanted_currency = _upper(symbol), _upper(currency)
    if wanted_currency not in FIAT_MINOR_UNITS:
        raise InvalidRequest(
            f"currency {currency[:20]!r} is not supported (an ISO 4217 code such as CNY, EUR, "
            "USD of the gateway's list)",
            code="unsupported_currency",
        )
    if wanted_symbol not in priced_symbols(registry):
        raise InvalidRequest(
            f"{symbol[:20]!r} has no fiat price on this gateway (a stablecoin it accepts: "
            f"{', '.join(priced_symbols(registry)) or 'none'})",
            code="unsupported_currency",
        )
    return wanted_symbol, wanted_currency


def _upper(text: str) -> str:
    # ASCII only: str.upper() maps some non-ASCII letters onto ASCII ones ("ß" -> "SS").
    return text.upper() if text.isascii() else text
