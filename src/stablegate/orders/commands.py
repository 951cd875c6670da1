"""``stablegate orders show|list|mark-completed``, mounted by :mod:`stablegate.cli`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import Chain, load_registry
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.console import (
    JsonFlag,
    iso_time,
    print_fields,
    print_json,
    print_record,
    print_rows,
    with_session,
)
from stablegate.merchants.service import get_merchant
from stablegate.models import Order, Payment
from stablegate.models.payment import PaymentKind
from stablegate.money import format_amount
from stablegate.orders import queries, service
from stablegate.orders.context import OrderContext
from stablegate.orders.view import order_view

orders_app = typer.Typer(help="Inspect orders.")

MerchantOption = Annotated[str, typer.Option(help="Merchant id.")]


@orders_app.command("show")
def show_order(
    merchant_id: MerchantOption,
    order_id: Annotated[str | None, typer.Option(help="Order id.")] = None,
    order_no: Annotated[str | None, typer.Option(help="Merchant order number.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one order and, without --json, every transfer seen for it and what it counted as."""

    async def work(
        session: AsyncSession, settings: Settings
    ) -> tuple[dict[str, Any], list[list[tuple[str, str]]]]:
        await get_merchant(session, merchant_id)
        order = await service.get_order(session, merchant_id, order_id=order_id, order_no=order_no)
        registry = load_registry(settings.chains_file)
        payments = await queries.order_payments(session, order.id)
        shown_payments = [payment_fields(p, order, registry.get(order.chain_id)) for p in payments]
        return order_view(order, registry, settings.public_url), shown_payments

    view, payments = with_session(work)
    print_record(view, as_json)
    if as_json:
        return
    for number, fields in enumerate(payments, 1):
        typer.echo(f"\npayment {number} of {len(payments)}")
        print_fields(fields)


def payment_fields(payment: Payment, order: Order, chain: Chain | None) -> list[tuple[str, str]]:
    """One transfer for people: its amount in its own token, and what it counted as, so a
    transfer of the wrong token reads as such rather than as nothing paid."""
    token = chain.token_by_address(payment.token_address) if chain else None
    if int(payment.token_address, 16) == 0:
        amount = f"{payment.amount} wei of the native coin"
    elif token is None:
        amount = f"{payment.amount} base units of token {payment.token_address}"
    else:
        amount = f"{format_amount(payment.amount, token.decimals)} {token.symbol}"
    return [
        ("txId", payment.tx_hash),
        ("logIndex", str(payment.log_index)),
        ("kind", f"{payment.kind.value}: {KIND_MEANING[payment.kind].format(order=order)}"),
        ("amount", amount),
        ("status", payment.status.value),
        ("late", "yes" if payment.late else "no"),
        ("blockNumber", str(payment.block_number)),
        ("blockTime", iso_time(payment.block_time_ms)),
        ("from", payment.from_address),
    ]


KIND_MEANING = {
    PaymentKind.CREDIT: "the order's token, counts towards the order",
    PaymentKind.BELOW_MIN: "below the token's minimum; not counted",
    PaymentKind.WRONG_TOKEN: "not the order's {order.symbol}; not counted, to be returned",
    PaymentKind.UNSUPPORTED_TOKEN: "a token outside the chain registry; not counted",
    PaymentKind.WRONG_CHAIN: "on a chain the order has left; not counted, to be returned",
    PaymentKind.NATIVE: "the chain's native coin; not counted",
    PaymentKind.UNATTRIBUTED: "not attributed to an order",
    PaymentKind.IGNORED: "ignored",
    PaymentKind.FLUSH: "moved out of the deposit to the payout address",
}


@orders_app.command("list")
def list_orders(
    merchant_id: MerchantOption,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List a merchant's newest orders."""

    async def work(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        await get_merchant(session, merchant_id)
        orders, _ = await service.list_orders(
            session, merchant_id, status=status, since_ms=None, limit=limit, cursor=None
        )
        registry = load_registry(settings.chains_file)
        return [order_view(order, registry, settings.public_url) for order in orders]

    views = with_session(work)
    if as_json:
        print_json(views)
        return
    columns = ["orderId", "orderNo", "status", "exceptions", "amount", "paid", "symbol"]
    columns += ["chain", "createTime"]
    rows = [{**view, "paid": view["paidAmount"], "chain": view["chainId"]} for view in views]
    print_rows(rows, columns, as_json=False)


@orders_app.command("mark-completed")
def mark_completed(
    order_id: Annotated[str, typer.Option(help="Order id.")],
    actor: Annotated[str, typer.Option(help="Who is doing this (kept in the audit log).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
    as_json: JsonFlag = False,
) -> None:
    """Complete a pending or expired order by hand (adds the `manual` exception; audited)."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        registry = load_registry(settings.chains_file)
        context = OrderContext(
            registry=registry,
            public_url=settings.public_url,
            max_order_amount=settings.max_order_amount,
        )
        order = await service.mark_completed(
            session, SystemClock(), context, order_id=order_id, actor=actor, reason=reason
        )
        return order_view(order, registry, settings.public_url)

    print_record(with_session(work), as_json)
