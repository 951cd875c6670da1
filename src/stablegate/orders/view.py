"""Render an order as its wire model (merchant view and the cashier's public view).

The models in :mod:`stablegate.orders.schemas` are the one list of the order's fields: the
endpoints return them, and the webhook event's ``data`` and the CLI's JSON are their dump
(:func:`~stablegate.web.wire.wire_json`), so the three cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from stablegate.chain.registry import ChainRegistry
from stablegate.models import Order, Payment
from stablegate.models.order import OrderStatus
from stablegate.money import format_amount
from stablegate.orders.payment_request import cashier_url, payment_uri, qr_url
from stablegate.orders.schemas import OrderOut, PaymentOut, PublicOrderOut
from stablegate.web.wire import wire_json


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
        toAddress=order.to_address,
        payoutAddress=order.payout_address,
        factory=order.factory,
        depositSalt=order.deposit_salt,
        cashierUrl=cashier_url(public_url, order.id),
        paymentUri=payment_uri(order),
        qrCode=qr_url(public_url, order.id),
        expireTime=order.expire_time_ms,
        createTime=order.create_time_ms,
        completeTime=order.complete_time_ms,
        txId=order.tx_id,
        confirmations=order.confirmations,
        description=order.description,
        metadata=order.metadata_json,
        redirectUrl=order.redirect_url,
    )


def order_view(order: Order, registry: ChainRegistry, public_url: str) -> dict[str, Any]:
    """The order as JSON: a webhook event's ``data``, the CLI's output."""
    return wire_json(order_out(order, registry, public_url))


def payment_out(payment: Payment, order: Order) -> PaymentOut:
    """One transfer to the order: its amount in the order's token units, base units for any
    other token."""
    same_token = payment.token_address.lower() == order.token_address.lower()
    return PaymentOut(
        txId=payment.tx_hash,
        logIndex=payment.log_index,
        from_=payment.from_address,
        tokenAddress=payment.token_address,
        amount=format_amount(payment.amount, order.decimals) if same_token else str(payment.amount),
        blockNumber=payment.block_number,
        blockHash=payment.block_hash,
        blockTime=payment.block_time_ms,
        status=payment.status,
        kind=payment.kind,
        late=payment.late,
    )


def public_order_out(
    order: Order, registry: ChainRegistry, public_url: str, server_time_ms: int
) -> PublicOrderOut:
    chain = registry.get(order.chain_id)
    d = order.decimals
    return PublicOrderOut(
        orderId=order.id,
        status=order.status,
        chainId=str(order.chain_id),
        network=chain.network if chain else f"chain-{order.chain_id}",
        symbol=order.symbol,
        tokenAddress=order.token_address,
        decimals=d,
        amount=format_amount(order.amount, d),
        paidAmount=format_amount(order.paid_amount, d),
        pendingAmount=format_amount(order.pending_amount, d),
        toAddress=order.to_address,
        paymentUri=payment_uri(order),
        qrCode=qr_url(public_url, order.id),
        confirmations=order.confirmations,
        requiredConfirmations=chain.confirmations if chain else 0,
        expireTime=order.expire_time_ms,
        serverTime=server_time_ms,
        redirectUrl=order.redirect_url if order.status == OrderStatus.COMPLETED else None,
        description=order.description,
    )


def public_order_view(
    order: Order, registry: ChainRegistry, public_url: str, server_time_ms: int
) -> dict[str, Any]:
    """The cashier's view as JSON: what the live-status stream sends and the page embeds."""
    return wire_json(public_order_out(order, registry, public_url, server_time_ms))
