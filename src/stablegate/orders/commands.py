"""``stablegate orders show|list|mark-completed``, mounted by :mod:`stablegate.cli`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import load_registry
from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.console import JsonFlag, output, print_json, print_record, with_session
from stablegate.orders import service
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
    """Show one order."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        order = await service.get_order(session, merchant_id, order_id=order_id, order_no=order_no)
        return order_view(order, load_registry(settings.chains_file), settings.public_url)

    print_record(with_session(work), as_json)


@orders_app.command("list")
def list_orders(
    merchant_id: MerchantOption,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List a merchant's newest orders."""

    async def work(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        orders, _ = await service.list_orders(
            session, merchant_id, status=status, since_ms=None, limit=limit, cursor=None
        )
        registry = load_registry(settings.chains_file)
        return [order_view(order, registry, settings.public_url) for order in orders]

    views = with_session(work)
    if as_json:
        print_json(views)
        return
    table = Table("orderId", "orderNo", "status", "amount", "symbol", "chain")
    for view in views:
        table.add_row(
            view["orderId"],
            view["orderNo"],
            view["status"],
            view["amount"],
            view["symbol"],
            view["chainId"],
        )
    output.print(table)


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
        context = service.OrderContext(
            registry=registry,
            public_url=settings.public_url,
            max_order_amount=settings.max_order_amount,
        )
        order = await service.mark_completed(
            session, SystemClock(), context, order_id=order_id, actor=actor, reason=reason
        )
        return order_view(order, registry, settings.public_url)

    print_record(with_session(work), as_json)
