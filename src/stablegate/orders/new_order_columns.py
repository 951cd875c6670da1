"""Columns of a new order that depend on where it is paid: its deposit address and its locked
fiat price. Shared by creating an order (orders.service) and moving one onto another chain and
token at the customer's pick (orders.repoint), so both derive them the same way.
"""

from __future__ import annotations

from stablegate.chain.evm import create2
from stablegate.chain.registry import Chain
from stablegate.rates.pricing import FiatPrice, decimal_text


def deposit_address(chain: Chain, payout: str, order_id: str) -> tuple[str, str, str]:
    """(address, factory, salt as 0x-hex) of the order's CREATE2 forwarder on ``chain``."""
    factory, implementation = create2.deposit_contracts(chain.factory, chain.implementation)
    salt = create2.deposit_salt(order_id)
    address = create2.forwarder_address(factory, implementation, payout, salt)
    return address, factory, "0x" + salt.hex()


def price_columns(price: FiatPrice | None) -> dict[str, object]:
    """The order's price columns: the fiat amount and the rate locked at creation."""
    if price is None:
        return {}
    return {
        "fiat_amount": decimal_text(price.fiat_amount),
        "fiat_currency": price.currency,
        "rate": decimal_text(price.rate),
        "rate_source": price.rate_source,
        "rate_time_ms": price.rate_time_ms,
    }
