"""Move a pending order nothing was paid to onto another chain and token (the customer chose
another of the payment methods an invoice offers).

The order keeps its id, number, creation and expiry times; it gets the new chain's token, a new
amount (a fiat order is priced again and its rate locked now; a token amount is the same decimal
amount in the new token), and the deposit address create_order would have given it there.
``repoint_time_ms`` records the move, so the new chain's watcher picks the order up however old
it is. The caller holds the order's row lock (SELECT ... FOR UPDATE; SQLite serialises writes).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.errors import Conflict, InvalidRequest
from stablegate.merchants.terms import load_terms
from stablegate.models import Order, Payment
from stablegate.models.merchant import DepositStrategy
from stablegate.money import format_amount, parse_amount
from stablegate.orders import unique_amount
from stablegate.orders.context import OrderContext
from stablegate.orders.new_order_columns import deposit_address, price_columns
from stablegate.orders.service import within_maximum
from stablegate.orders.state import OrderStatus


async def check_repointable(session: AsyncSession, order: Order, now_ms: int) -> None:
    """409 unless the order is pending, unexpired and nothing at all was seen for it."""
    if order.status != OrderStatus.PENDING:
        raise Conflict(f"the order is {order.status}", code="order_not_pending")
    if now_ms >= order.expire_time_ms:
        raise Conflict("the order has expired", code="order_expired")
    seen = await session.scalar(
        select(func.count()).select_from(Payment).where(Payment.order_id == order.id)
    )
    if order.paid_amount or order.pending_amount or order.tx_id is not None or seen:
        raise Conflict("a payment has been seen for this order", code="order_has_payments")


async def repoint_order(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    order: Order,
    *,
    chain_id: int,
    symbol: str,
    amount: Decimal,
    currency: str | None,
) -> Order:
    """``amount`` in ``currency`` (a fiat code) or, without one, in the new token itself.
    Refusals change nothing: 409 as :func:`check_repointable`, 400 for a chain or token the
    gateway or the merchant does not have, 503 ``rate_unavailable``."""
    now = clock.now_ms()
    await check_repointable(session, order, now)
    chain = ctx.registry.get(chain_id)
    token = chain.token_by_symbol(symbol) if chain is not None else None
    if chain is None or token is None:
        raise InvalidRequest(
            f"{symbol} on chain {chain_id} is not accepted here", code="unsupported_token"
        )
    terms = await load_terms(session, order.merchant_id)
    payout = terms.payout_addresses.get(chain.id) if terms is not None else None
    if terms is None or payout is None:
        raise InvalidRequest(
            f"no payout address is set for chain {chain.id}", code="payout_address_missing"
        )
    price = None
    if currency is None:
        units = parse_amount(format(amount, "f"), token.decimals)
        within_maximum(ctx, units, token.decimals, "amount")
    else:
        if ctx.rates is None:
            raise RuntimeError("this order context has no rates to price fiat orders with")
        price = await ctx.rates.price_order(
            session, order.merchant_id, token.symbol, token.decimals, currency, amount
        )
        units = price.units
        tokens = f"{format_amount(units, token.decimals)} {token.symbol}"
        within_maximum(ctx, units, token.decimals, f"{amount} {currency} ({tokens})")
    if units <= 0:
        raise InvalidRequest("amount must be positive", code="invalid_amount")
    if terms.deposit_strategy == DepositStrategy.UNIQUE_AMOUNT:
        # The old reservation stays: a transfer matching it still finds this order, and is then
        # kept apart as another chain's or token's (payments.service.classify).
        units = await unique_amount.reserve_amount(
            session,
            chain_id=chain.id,
            token=token.address,
            address=payout,
            base_amount=units,
            decimals=token.decimals,
            order_id=order.id,
            now_ms=now,
        )
        to_address, factory, salt = payout, None, None
    else:
        to_address, factory, salt = deposit_address(chain, payout, order.id)
    order.chain_id = chain.id
    order.symbol = token.symbol
    order.token_address = token.address
    order.decimals = token.decimals
    order.amount = units
    order.deposit_strategy = terms.deposit_strategy
    order.to_address = to_address
    order.payout_address = payout
    order.factory = factory
    order.deposit_salt = salt
    for column, value in price_columns(price).items():
        setattr(order, column, value)
    order.repoint_time_ms = now
    order.updated_at_ms = now
    await session.flush()
    return order
