"""The customer's choice of payment method, as the cashier sees it.

An order may offer several payment methods (a Greenfield invoice naming several): until the
customer picks one, no public surface shows a deposit address, payment request or QR code, only
the choices. Which orders offer what, and what choosing does, belongs to the format that made
the order (compat sits above the cashier), so the app gives the cashier a :class:`MethodPicker`
in ``app.state.method_picker``; without one no order offers a choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.errors import NotFound
from stablegate.models import Order
from stablegate.orders.context import OrderContext
from stablegate.orders.schemas import PublicMethodOut, PublicOrderOut
from stablegate.orders.view import PublicOrderParts, public_order_out
from stablegate.web.wire import wire_json


@dataclass(frozen=True)
class MethodOption:
    id: str
    chain_id: int
    symbol: str
    amount: str | None  # in the token, when known before the choice


class MethodPicker(Protocol):
    def options(self, order: Order) -> list[MethodOption]:
        """The methods the customer may still choose among; empty when there is no choice."""
        ...

    async def choose(
        self, session: AsyncSession, clock: Clock, ctx: OrderContext, order_id: str, method: str
    ) -> Order:
        """Lock the order and move it onto ``method``, or raise a GatewayError."""
        ...


class NoChoice:
    """The picker of an app without foreign formats: every order is paid where it was made."""

    def options(self, order: Order) -> list[MethodOption]:
        return []

    async def choose(
        self, session: AsyncSession, clock: Clock, ctx: OrderContext, order_id: str, method: str
    ) -> Order:
        raise NotFound("this order offers no choice of payment method")


NO_CHOICE = NoChoice()

# What a customer must not see before choosing: where to pay, and codes that say so.
_HIDDEN = ("toAddress", "tokenAddress", "paymentUri", "qrCode", "paymentQrCode", "paymentQrDataUrl")


def app_method_picker(request: Request) -> MethodPicker:
    picker: MethodPicker = getattr(request.app.state, "method_picker", NO_CHOICE)
    return picker


def method_out(option: MethodOption, registry: ChainRegistry) -> PublicMethodOut:
    chain = registry.get(option.chain_id)
    return PublicMethodOut(
        id=option.id,
        chainId=str(option.chain_id),
        network=chain.network if chain else f"chain-{option.chain_id}",
        chainName=chain.name if chain else f"chain {option.chain_id}",
        symbol=option.symbol,
        amount=option.amount,
    )


def cashier_order_out(
    order: Order,
    registry: ChainRegistry,
    public_url: str,
    server_time_ms: int,
    parts: PublicOrderParts,
    picker: MethodPicker,
) -> PublicOrderOut:
    """The public view of the order; while a choice is open, its choices and no address."""
    out = public_order_out(order, registry, public_url, server_time_ms, parts)
    options = picker.options(order)
    if not options:
        return out
    hidden: dict[str, object] = dict.fromkeys(_HIDDEN, "")
    hidden["paymentMethods"] = [method_out(option, registry) for option in options]
    return out.model_copy(update=hidden)


def cashier_order_view(
    order: Order,
    registry: ChainRegistry,
    public_url: str,
    server_time_ms: int,
    parts: PublicOrderParts,
    picker: MethodPicker,
) -> dict[str, Any]:
    """:func:`cashier_order_out` as JSON: what the page embeds and the live stream sends."""
    return wire_json(cashier_order_out(order, registry, public_url, server_time_ms, parts, picker))
