"""Render an order as its wire model (merchant view and the cashier's public view).

The models in :mod:`stablegate.orders.schemas` are the one list of the order's fields: the
endpoints return them, and the webhook event's ``data`` and the CLI's JSON are their dump
(:func:`~stablegate.web.wire.wire_json`), so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect

from stablegate.chain.registry import Chain, ChainRegistry
from stablegate.merchants.branding import MerchantBranding
from stablegate.models import Merchant, Order, Payment
from stablegate.models.order import OrderStatus
from stablegate.models.payment import PaymentStatus
from stablegate.money import format_amount
from stablegate.orders.payment_request import (
    cashier_url,
    due_amount,
    payment_qr_url,
    payment_uri,
    qr_data_url,
    qr_url,
)
from stablegate.orders.queries import PublicOrderRows
from stablegate.orders.schemas import (
    MerchantOut,
    OrderOut,
    PaymentOut,
    PublicOrderOut,
    PublicPaymentOut,
)
from stablegate.web.wire import wire_json


def fiat_fields(order: Order) -> dict[str, Any]:
    """The price fields of an order priced in fiat, else none at all: they are given to the
    model only when set, so an order without a currency renders exactly as before."""
    if order.fiat_currency is None:
        return {}
    return {
        "fiatAmount": order.fiat_amount,
        "currency": order.fiat_currency,
        "rate": order.rate,
        "rateSource": order.rate_source,
        "rateTime": order.rate_time_ms,
    }


def order_out(order: Order, registry: ChainRegistry, public_url: str) -> OrderOut:
    chain = registry.get(order.chain_id)
    d = order.decimals
    return OrderOut(
        orderId=order.id,
        orderNo=order.order_no,
        custNo=order.cust_no,
        status=order.status,
        exceptions=sorted(order.exceptions or []),
        chainId=str(order.chain_id),
        network=chain.network if chain else f"chain-{order.chain_id}",
        symbol=order.symbol,
        tokenAddress=order.token_address,
        decimals=d,
        amount=format_amount(order.amount, d),
        paidAmount=format_amount(order.paid_amount, d),
        pendingAmount=format_amount(order.pending_amount, d),
        dueAmount=format_amount(due_amount(order), d),
        toAddress=order.to_address,
        payoutAddress=order.payout_address,
        factory=order.factory,
        depositSalt=order.deposit_salt,
        cashierUrl=cashier_url(public_url, order.id),
        paymentUri=payment_uri(order),
        qrCode=qr_url(public_url, order.id),
        paymentQrCode=payment_qr_url(public_url, order),
        expireTime=order.expire_time_ms,
        createTime=order.create_time_ms,
        completeTime=order.complete_time_ms,
        txId=order.tx_id,
        confirmations=order.confirmations,
        description=order.description,
        metadata=order.metadata_json,
        redirectUrl=order.redirect_url,
        **fiat_fields(order),
    )


def order_view(order: Order, registry: ChainRegistry, public_url: str) -> dict[str, Any]:
    """The order as JSON: a webhook event's ``data``, the CLI's output."""
    return wire_json(order_out(order, registry, public_url))


# Where a new order keeps the view its first event was written with (InstanceState.info, the
# ORM's place for data of one's own on an instance).
_CREATED_VIEW = "stablegate.created_view"


def remember_created_view(order: Order, view: dict[str, Any]) -> None:
    """Keep the view a new order's first event was written with: the signed API answers with
    it instead of rendering the unchanged order a second time."""
    inspect(order).info[_CREATED_VIEW] = view


def created_view(order: Order) -> dict[str, Any] | None:
    """The view :func:`remember_created_view` kept, if any."""
    view: dict[str, Any] | None = inspect(order).info.get(_CREATED_VIEW)
    return view


@dataclass(frozen=True)
class PaymentAmount:
    """A transfer's amount as shown: in its token's units when the registry knows the token."""

    amount: str
    symbol: str | None
    decimals: int | None


def payment_amount(payment: Payment, order: Order, chain: Chain | None) -> PaymentAmount:
    if payment.token_address.lower() == order.token_address.lower():
        return PaymentAmount(
            format_amount(payment.amount, order.decimals), order.symbol, order.decimals
        )
    token = chain.token_by_address(payment.token_address) if chain else None
    if token is None:  # a token outside the registry, or the native coin: base units
        return PaymentAmount(str(payment.amount), None, None)
    return PaymentAmount(
        format_amount(payment.amount, token.decimals), token.symbol, token.decimals
    )


def payment_out(payment: Payment, order: Order, registry: ChainRegistry) -> PaymentOut:
    """One transfer to the order, in the units of the token that arrived."""
    shown = payment_amount(payment, order, registry.get(order.chain_id))
    return PaymentOut(
        txId=payment.tx_hash,
        logIndex=payment.log_index,
        from_=payment.from_address,
        tokenAddress=payment.token_address,
        amount=shown.amount,
        symbol=shown.symbol,
        decimals=shown.decimals,
        blockNumber=payment.block_number,
        blockHash=payment.block_hash,
        blockTime=payment.block_time_ms,
        status=payment.status,
        kind=payment.kind,
        late=payment.late,
    )


@dataclass(frozen=True)
class PublicOrderParts:
    """What the public view shows beside the order's own row."""

    merchant: MerchantBranding
    payments: Sequence[Payment] = ()  # every transfer to the order but its flushes, oldest first
    head: int | None = None  # the newest block the chain's watcher has seen


def detached(rows: PublicOrderRows) -> tuple[Order, PublicOrderParts]:
    """The order and its parts as detached ORM objects built from the rows (nothing tracked)."""
    order = Order(**rows.order._asdict())
    merchant = Merchant(**rows.merchant._asdict()) if rows.merchant is not None else None
    return order, PublicOrderParts(
        merchant=MerchantBranding.of(merchant)
        if merchant is not None
        else MerchantBranding(name="", logo_url=None, support_contact=None),
        payments=tuple(Payment(**row._asdict()) for row in rows.payments),
        head=rows.head,
    )


def _confirmations(payment: Payment, head: int | None, required: int) -> int:
    """Counted up to ``required``: a final payment shows that number, so the view stops
    changing once nothing is left to wait for."""
    if payment.status == PaymentStatus.FINAL:
        return required
    if payment.status != PaymentStatus.SEEN or head is None:
        return 0
    return min(max(head - payment.block_number + 1, 0), required)


def public_payment_out(
    payment: Payment, order: Order, chain: Chain | None, head: int | None
) -> PublicPaymentOut:
    shown = payment_amount(payment, order, chain)
    return PublicPaymentOut(
        txId=payment.tx_hash,
        logIndex=payment.log_index,
        amount=shown.amount,
        symbol=shown.symbol,
        decimals=shown.decimals,
        tokenAddress=payment.token_address,
        kind=payment.kind,
        late=payment.late,
        status=payment.status,
        confirmations=_confirmations(payment, head, chain.confirmations if chain else 0),
        explorerTxUrl=chain.tx_url(payment.tx_hash) if chain else None,
        time=payment.block_time_ms,
    )


def public_order_out(
    order: Order,
    registry: ChainRegistry,
    public_url: str,
    server_time_ms: int,
    parts: PublicOrderParts,
) -> PublicOrderOut:
    chain = registry.get(order.chain_id)
    d = order.decimals
    return PublicOrderOut(
        orderId=order.id,
        status=order.status,
        exceptions=sorted(order.exceptions or []),
        chainId=str(order.chain_id),
        network=chain.network if chain else f"chain-{order.chain_id}",
        symbol=order.symbol,
        tokenAddress=order.token_address,
        decimals=d,
        amount=format_amount(order.amount, d),
        paidAmount=format_amount(order.paid_amount, d),
        pendingAmount=format_amount(order.pending_amount, d),
        dueAmount=format_amount(due_amount(order), d),
        toAddress=order.to_address,
        paymentUri=payment_uri(order),
        qrCode=qr_url(public_url, order.id),
        paymentQrCode=payment_qr_url(public_url, order),
        paymentQrDataUrl=qr_data_url(payment_uri(order)),
        confirmations=order.confirmations,
        requiredConfirmations=chain.confirmations if chain else 0,
        expireTime=order.expire_time_ms,
        serverTime=server_time_ms,
        completeTime=order.complete_time_ms,
        txId=order.tx_id,
        explorerTxUrl=chain.tx_url(order.tx_id) if chain else None,
        redirectUrl=order.redirect_url if order.status == OrderStatus.COMPLETED else None,
        description=order.description,
        merchant=MerchantOut(
            name=parts.merchant.name,
            logoUrl=parts.merchant.logo_url,
            supportContact=parts.merchant.support_contact,
        ),
        payments=[public_payment_out(p, order, chain, parts.head) for p in parts.payments],
        **fiat_fields(order),
    )


def public_order_view(
    order: Order,
    registry: ChainRegistry,
    public_url: str,
    server_time_ms: int,
    parts: PublicOrderParts,
) -> dict[str, Any]:
    """The cashier's view as JSON: what the live-status stream sends and the page embeds."""
    return wire_json(public_order_out(order, registry, public_url, server_time_ms, parts))
