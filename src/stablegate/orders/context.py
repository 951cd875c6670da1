"""What the order rules need besides the session (built by the app, the workers and commands)."""

from __future__ import annotations

from dataclasses import dataclass

from stablegate.chain.registry import ChainRegistry
from stablegate.orders.insert_guard import SignedOrders
from stablegate.rates.service import Rates


@dataclass(frozen=True)
class OrderContext:
    """What the order rules need besides the session: rendering (registry, public URL), the
    gateway's limit and, to create orders priced in fiat, its rates (the workers and commands
    that only move existing orders have none)."""

    registry: ChainRegistry
    public_url: str
    max_order_amount: int  # whole token units
    rates: Rates | None = None
    # Writes a signed order outside a session transaction (the API's one-statement path).
    signed_orders: SignedOrders | None = None
