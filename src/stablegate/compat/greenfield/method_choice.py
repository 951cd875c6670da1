"""The customer's pick among an invoice's payment methods, made in the cashier.

An invoice whose ``checkout.paymentMethods`` names two or more of the store's methods is made on
its first (or default) method with the ids kept as ``offeredMethods`` and ``activated: false``
in its Greenfield fields. Until the customer picks one, the cashier shows the choices and no
address. Picking moves the order onto that method (:func:`stablegate.orders.repoint.repoint_order`:
a fiat invoice is priced again, its rate locked at that moment, as BTCPay does for its lazy
payment methods) and marks the invoice activated. Picking the chosen method again changes
nothing; another one is 409 ``method_already_chosen``.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.cashier.method_picker import MethodOption
from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.compat.greenfield.invoices import FORMAT, greenfield_fields
from stablegate.compat.greenfield.payment_methods import canonical, method_id
from stablegate.errors import Conflict, InvalidRequest, NotFound
from stablegate.models import Order
from stablegate.models.order import NotifyFormat
from stablegate.orders import queries
from stablegate.orders.context import OrderContext
from stablegate.orders.repoint import repoint_order
from stablegate.rates.currencies import is_fiat


def awaiting_choice(order: Order) -> bool:
    fields = greenfield_fields(order)
    return (
        order.notify_format == NotifyFormat.GREENFIELD
        and fields.get("activated") is False
        and isinstance(fields.get("offeredMethods"), list)
    )


def offered_methods(order: Order, registry: ChainRegistry) -> list[MethodOption]:
    """The invoice's offered methods the registry still has, in the order the shop named them;
    every one when not yet activated, else none."""
    if not awaiting_choice(order):
        return []
    fields = greenfield_fields(order)
    amount, currency = fields.get("amount"), fields.get("currency")
    # An invoice in a token is that many of whichever token; a fiat one is priced at the pick.
    known = amount if isinstance(amount, str) and not is_fiat(str(currency)) else None
    by_id = {
        method_id(token.symbol, chain.network): (chain.id, token.symbol)
        for chain in registry
        for token in chain.tokens
    }
    options = []
    for offered in fields["offeredMethods"]:
        found = by_id.get(offered) if isinstance(offered, str) else None
        if found is not None:
            options.append(MethodOption(offered, found[0], found[1], known))
    return options


class GreenfieldPicker:
    """The cashier's :class:`~stablegate.cashier.method_picker.MethodPicker` for invoices."""

    def __init__(self, registry: ChainRegistry) -> None:
        self.registry = registry

    def options(self, order: Order) -> list[MethodOption]:
        return offered_methods(order, self.registry)

    async def choose(
        self, session: AsyncSession, clock: Clock, ctx: OrderContext, order_id: str, method: str
    ) -> Order:
        return await choose_method(session, clock, ctx, order_id, method)


async def choose_method(
    session: AsyncSession, clock: Clock, ctx: OrderContext, order_id: str, method: str
) -> Order:
    """Move the invoice onto ``method`` under its row lock, in the caller's transaction."""
    order = await queries.locked_order(session, order_id)
    if order is None or order.notify_format != NotifyFormat.GREENFIELD:
        raise NotFound("no such invoice")
    fields = greenfield_fields(order)
    wanted = canonical(method)
    if fields.get("activated") is not False:
        chosen = fields.get("paymentMethod")
        if isinstance(chosen, str) and canonical(chosen) == wanted:
            return order  # the same pick again (a second click, a reload): nothing to do
        raise Conflict(
            "a payment method has already been chosen for this invoice",
            code="method_already_chosen",
        )
    option = next((o for o in offered_methods(order, ctx.registry) if o.id == wanted), None)
    if option is None:
        raise InvalidRequest(
            "this invoice does not offer that payment method", code="method_not_offered"
        )
    amount, currency = fields.get("amount"), fields.get("currency")
    if not isinstance(amount, str) or not isinstance(currency, str):
        raise RuntimeError(f"invoice {order.id} has no amount stored")
    await repoint_order(
        session,
        clock,
        ctx,
        order,
        chain_id=option.chain_id,
        symbol=option.symbol,
        amount=Decimal(amount),
        currency=currency if is_fiat(currency) else None,
    )
    # A new dict: the JSON column is saved only when assigned.
    order.metadata_json = {
        **(order.metadata_json or {}),
        FORMAT: {**fields, "paymentMethod": option.id, "activated": True},
    }
    await session.flush()
    return order
