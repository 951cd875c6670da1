"""The gateway's whole context: the shared web part plus each domain's own state.

:func:`stablegate.api.app.create_app` builds it once, stores it as ``app.state.gateway`` and
puts each domain's piece in ``app.state`` for that domain's dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

from stablegate.cashier.live import LiveOrders
from stablegate.cashier.stream_slots import StreamSlots
from stablegate.orders.context import OrderContext
from stablegate.orders.insert_guard import SignedOrders
from stablegate.rates.metrics import RateGauges
from stablegate.rates.service import Rates
from stablegate.web.context import WebContext
from stablegate.webhooks.signing_key import GatewaySigningKey


@dataclass(kw_only=True)
class GatewayContext(WebContext):
    signing_key: GatewaySigningKey
    stream_slots: StreamSlots
    live_orders: LiveOrders
    rates: Rates
    rate_gauges: RateGauges
    # The signed API's writer of orders outside a session transaction (None: every order is
    # made in a transaction, e.g. on an in-memory SQLite database).
    signed_orders: SignedOrders | None = None

    @property
    def orders(self) -> OrderContext:
        return OrderContext(
            registry=self.registry,
            public_url=self.settings.public_url,
            max_order_amount=self.settings.max_order_amount,
            rates=self.rates,
            signed_orders=self.signed_orders,
        )
