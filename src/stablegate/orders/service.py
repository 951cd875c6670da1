"""Order rules: creation (idempotent on orderNo), lookup, listing and cancellation."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.clock import Clock
from stablegate.errors import Conflict, InvalidRequest, NotFound
from stablegate.merchants.terms import MerchantTerms, load_terms
from stablegate.models import AuditEntry, Order
from stablegate.models.merchant import DepositStrategy
from stablegate.money import format_amount, parse_amount
from stablegate.orders import queries, unique_amount
from stablegate.orders.context import OrderContext
from stablegate.orders.direct_insert import insert_direct, same_or_conflict
from stablegate.orders.insert_guard import InsertGuard
from stablegate.orders.new_order_columns import deposit_address, price_columns
from stablegate.orders.schemas import CreateOrderRequest, PaymentOut
from stablegate.orders.state import OrderException, OrderStatus, Trigger, allowed, transition
from stablegate.orders.view import order_view, payment_out
from stablegate.pagination import INT64_MAX, cursor_id, cursor_int, decode_cursor, encode_cursor
from stablegate.rates.pricing import FiatPrice, decimal_text, parse_fiat_amount
from stablegate.webhooks.outbox import add_event


def new_order_id() -> str:
    # 128 random bits, URL-safe: unguessable, since the cashier page is public.
    return secrets.token_urlsafe(16)


def _fingerprint(
    req: CreateOrderRequest, chain_id: int, symbol: str, price: Mapping[str, object]
) -> str:
    """``price`` is ``{"amount": units}`` for a token amount (the fields every order had before
    fiat pricing, so their fingerprints are unchanged), ``{"fiatAmount": text, "currency":
    code}`` for a fiat one: a repeat compares what the merchant asked for, not the rate."""
    fields = {
        "chainId": chain_id,
        "symbol": symbol,
        **price,
        "custNo": req.cust_no,
        "notifyUrl": req.notify_url,
        "redirectUrl": req.redirect_url,
        "expireSeconds": req.expire_seconds,
        "description": req.description,
        "metadata": req.metadata,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_order(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    *,
    merchant_id: str,
    req: CreateOrderRequest,
    terms: MerchantTerms | None = None,
    detached: bool = False,
    guard: InsertGuard | None = None,
) -> tuple[Order, bool]:
    """Create an order, or return the existing one for a repeated ``orderNo``.

    Returns (order, created). A repeat with different fields is 409 ``order_conflict``. With
    ``currency`` the amount is converted at the current rate (``rates.price_order``: 503
    ``rate_unavailable`` when there is none, nothing stored) and the rate is kept on the order.

    ``terms`` are the merchant's deposit strategy and payout addresses when the caller read them
    in this transaction (the signed API, with the key's credentials); otherwise they are read
    here. With ``detached`` a new order of a forwarder merchant and its first event are written
    with one INSERT each, not through the session (the signed API's hot path): the returned order
    is then not in the session and changes made to it are not saved. With ``guard`` as well,
    ``ctx.signed_orders`` writes the order, its event and the guard's checks atomically outside
    the session (:mod:`stablegate.orders.signed_insert`), the session only reading a repeat:
    the caller must have seen :func:`writes_directly` hold, and gets :class:`StaleCredentials`
    when nothing was written because the key's credentials changed.
    """
    chain = ctx.registry.require(req.chain_id)
    token = chain.token_by_symbol(req.symbol)
    if token is None:
        raise InvalidRequest(
            f"{req.symbol} is not supported on chain {chain.id}", code="unsupported_token"
        )
    # Priced in fiat: the amount asked, in its currency, converted once no repeat is found.
    asked = None if req.currency is None else (parse_fiat_amount(req.amount), req.currency)
    if asked is None:
        units = parse_amount(req.amount, token.decimals)
        if units <= 0:
            raise InvalidRequest("amount must be positive", code="invalid_amount")
        within_maximum(ctx, units, token.decimals, "amount")
        fingerprint = _fingerprint(req, chain.id, token.symbol, {"amount": units})
    else:
        fiat = {"fiatAmount": decimal_text(asked[0]), "currency": asked[1]}
        fingerprint = _fingerprint(req, chain.id, token.symbol, fiat)

    if terms is None:
        terms = await load_terms(session, merchant_id)
        if terms is None:
            raise NotFound("merchant not found")
    # Straight to one INSERT that skips a repeated orderNo: no lookup before it, no savepoint.
    direct = detached and writes_directly(req, terms)
    if guard is not None and not direct:
        raise ValueError("a guarded order must be one written directly")
    # A repeat returns the order as it was made: it needs no rate, and a rate that moved since
    # does not change its amount.
    if req.order_no is not None and not direct:
        existing = await queries.merchant_order(session, merchant_id, order_no=req.order_no)
        if existing is not None:
            return same_or_conflict(existing, fingerprint), False

    price: FiatPrice | None = None
    if asked is not None:
        if ctx.rates is None:
            raise RuntimeError("this order context has no rates to price fiat orders with")
        price = await ctx.rates.price_order(
            session, merchant_id, token.symbol, token.decimals, asked[1], asked[0]
        )
        units = price.units
        tokens = f"{format_amount(units, token.decimals)} {token.symbol}"
        within_maximum(ctx, units, token.decimals, f"{req.amount} {asked[1]} ({tokens})")

    payout_address = terms.payout_addresses.get(chain.id)
    if payout_address is None:
        if direct and guard is None and req.order_no is not None:
            # Not looked up above: a repeat of an order made before the address was removed
            # is still answered with that order.
            existing = await queries.merchant_order(session, merchant_id, order_no=req.order_no)
            if existing is not None:
                return same_or_conflict(existing, fingerprint), False
        raise InvalidRequest(
            f"no payout address is set for chain {chain.id}; ask the operator to set one",
            code="payout_address_missing",
        )
    order_id = new_order_id()
    now = clock.now_ms()
    strategy = terms.deposit_strategy
    if strategy == DepositStrategy.UNIQUE_AMOUNT:
        to_address, factory, salt_hex = payout_address, None, None
    else:
        to_address, factory, salt_hex = deposit_address(chain, payout_address, order_id)
    attributes: dict[str, Any] = dict(
        id=order_id,
        merchant_id=merchant_id,
        order_no=req.order_no or order_id,
        cust_no=req.cust_no,
        request_fingerprint=fingerprint,
        chain_id=chain.id,
        symbol=token.symbol,
        token_address=token.address,
        decimals=token.decimals,
        amount=units,
        paid_amount=0,
        pending_amount=0,
        status=transition(None, Trigger.CREATED).target,
        exceptions=[],
        deposit_strategy=strategy,
        to_address=to_address,
        payout_address=payout_address,
        factory=factory,
        deposit_salt=salt_hex,
        notify_url=req.notify_url,
        redirect_url=req.redirect_url,
        description=req.description,
        metadata_json=req.metadata,
        confirmations=0,
        event_sequence=0,
        expire_time_ms=now + req.expire_seconds * 1000,
        create_time_ms=now,
        updated_at_ms=now,
        **price_columns(price),
    )
    if direct:
        return await insert_direct(session, clock, ctx, attributes, fingerprint, guard)
    order = Order(**attributes)
    # A concurrent request with the same orderNo may win the race: the savepoint keeps
    # this transaction usable so we can return the winner instead of failing.
    try:
        async with session.begin_nested():
            session.add(order)
            await session.flush()
            if strategy == DepositStrategy.UNIQUE_AMOUNT:
                order.amount = await unique_amount.reserve_amount(
                    session,
                    chain_id=chain.id,
                    token=token.address,
                    address=payout_address,
                    base_amount=units,
                    decimals=token.decimals,
                    order_id=order_id,
                    now_ms=now,
                )
                await session.flush()
    except IntegrityError:
        if req.order_no is None:
            raise
        existing = await queries.merchant_order(session, merchant_id, order_no=req.order_no)
        if existing is None:
            raise
        return same_or_conflict(existing, fingerprint), False
    for event_type in transition(None, Trigger.CREATED).events:
        await add_event(
            session, clock, order, event_type, order_view(order, ctx.registry, ctx.public_url)
        )
    return order, True


def writes_directly(req: CreateOrderRequest, terms: MerchantTerms) -> bool:
    """Whether a new order is one INSERT (``create_order(detached=True)``): priced in its token
    (no rate to read) for a merchant paid through deposit contracts (no amount to reserve)."""
    return req.currency is None and terms.deposit_strategy != DepositStrategy.UNIQUE_AMOUNT


def within_maximum(ctx: OrderContext, units: int, decimals: int, what: str) -> None:
    """The gateway's maximum, in whole tokens; for a fiat order on the converted amount (also
    for an order moved onto another token, orders.repoint)."""
    if units > ctx.max_order_amount * 10**decimals:
        raise InvalidRequest(
            f"{what} is above this gateway's maximum of {ctx.max_order_amount}",
            code="invalid_amount",
        )


async def get_order(
    session: AsyncSession,
    merchant_id: str,
    *,
    order_id: str | None = None,
    order_no: str | None = None,
    for_update: bool = False,
) -> Order:
    if order_id is None and order_no is None:
        raise InvalidRequest("give orderId or orderNo", code="invalid_request")
    order = await queries.merchant_order(
        session, merchant_id, order_id=order_id, order_no=order_no, for_update=for_update
    )
    if order is None:
        raise NotFound("order not found")
    return order


def _encode_cursor(order: Order) -> str:
    return encode_cursor([order.create_time_ms, order.id])


def _decode_cursor(cursor: str) -> tuple[int, str]:
    created, order_id = decode_cursor(cursor, 2)
    return cursor_int(created, low=0, high=INT64_MAX), cursor_id(order_id)


async def list_orders(
    session: AsyncSession,
    merchant_id: str,
    *,
    status: str | None,
    since_ms: int | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Order], str | None]:
    """Newest first, keyset-paginated on (createTime, orderId)."""
    query = queries.readable_orders(merchant_id)
    if status is not None:
        if status not in set(OrderStatus):
            raise InvalidRequest(f"unknown status {status!r}", code="invalid_status")
        query = query.where(Order.status == status)
    if since_ms is not None:
        query = query.where(Order.create_time_ms >= since_ms)
    if cursor is not None:
        created, last_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                Order.create_time_ms < created,
                and_(Order.create_time_ms == created, Order.id < last_id),
            )
        )
    query = query.order_by(Order.create_time_ms.desc(), Order.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def cancel_order(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    *,
    merchant_id: str,
    order_id: str | None,
    order_no: str | None,
) -> Order:
    order = await get_order(
        session, merchant_id, order_id=order_id, order_no=order_no, for_update=True
    )
    if order.status == OrderStatus.CANCELLED:
        return order  # cancelling twice is harmless
    if order.status != OrderStatus.PENDING:
        raise Conflict(
            f"order is {order.status}, only pending orders can be cancelled",
            code="order_not_pending",
        )
    if order.paid_amount > 0 or order.pending_amount > 0 or order.tx_id is not None:
        raise Conflict("a payment has been seen for this order", code="order_has_payments")
    row = transition(OrderStatus(order.status), Trigger.MERCHANT_CANCEL)
    order.status = row.target
    order.updated_at_ms = clock.now_ms()
    for event_type in row.events:
        await add_event(
            session, clock, order, event_type, order_view(order, ctx.registry, ctx.public_url)
        )
    return order


async def payments_of(
    session: AsyncSession, order: Order, registry: ChainRegistry
) -> list[PaymentOut]:
    """Every transfer seen for the order, credited or not, oldest first (not its flushes)."""
    return [
        payment_out(p, order, registry) for p in await queries.order_payments(session, order.id)
    ]


async def mark_completed(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    *,
    order_id: str,
    actor: str,
    reason: str,
) -> Order:
    """The operator completes a pending or expired order by hand (audited: who and why)."""
    if not actor.strip() or not reason.strip():
        raise InvalidRequest("say who you are and why", code="audit_required")
    order = await queries.locked_order(session, order_id)
    if order is None:
        raise NotFound("order not found")
    status = OrderStatus(order.status)
    if not allowed(status, Trigger.OPERATOR_COMPLETE):
        raise Conflict(
            f"order is {order.status}; only pending or expired orders can be marked completed",
            code="order_not_completable",
        )
    row = transition(status, Trigger.OPERATOR_COMPLETE)
    order.status = row.target
    order.exceptions = sorted({*(order.exceptions or []), OrderException.MANUAL.value})
    now = clock.now_ms()
    order.complete_time_ms = now
    order.updated_at_ms = now
    session.add(
        AuditEntry(
            at_ms=now,
            actor=actor,
            action="order.mark_completed",
            subject=order.id,
            details={"reason": reason, "from": status.value},
        )
    )
    for event_type in row.events:
        await add_event(
            session, clock, order, event_type, order_view(order, ctx.registry, ctx.public_url)
        )
    return order
