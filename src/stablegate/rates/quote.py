"""A price as one source gave it, and the errors a source can fail with."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True)
class Quote:
    """One price of ``base`` in ``quote`` (``USDT``/``USD``: 1 USDT costs ``mid`` USD).

    Stablecoin quotes have a stablecoin as ``base`` and a fiat currency as ``quote``; the fiat
    reference (ECB) gives ``EUR``/``USD``, ``EUR``/``CNY``, ... All prices are positive Decimals
    parsed from the provider's text, never floats.
    """

    source: str  # the adapter's name: "kraken", "ecb", ...
    base: str
    quote: str
    mid: Decimal
    bid: Decimal | None
    ask: Decimal | None
    time_ms: int  # the provider's own time of the price, else when we received it


class SourceFault(StrEnum):
    TIMEOUT = "timeout"  # no answer in time, or the connection failed
    HTTP_STATUS = "http_status"  # an answer other than 2xx
    MALFORMED = "malformed"  # not the documented shape
    INVALID_PRICE = "invalid_price"  # zero, negative, not a number


class SourceError(Exception):
    """A source gave nothing usable this time; the fetcher logs it and keeps what it had."""

    def __init__(self, source: str, fault: SourceFault, message: str) -> None:
        super().__init__(f"{source}: {fault}: {message}")
        self.source = source
        self.fault = fault
        self.message = message
