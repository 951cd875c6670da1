"""Render an order as the wire object (merchant view and the cashier's public view)."""

from __future__ import annotations

from typing import Any

from stablegate.chain.registry import ChainRegistry
from stablegate.models import Order
from stablegate.models.order import OrderStatus
from stablegate.money import format_amount


def payment_uri(order: Order) -> str:
    """EIP-681 transfer request in base units (wallets parse it unevenly; the page shows text)."""
    return (
        f"ethereum:{order.token_address}@{order.chain_id}/transfer"
        f"?address={order.to_address}&uint256={order.amount}"
    )


def qr_url(public_url: str, order_id: str) -> str:
    return f"{public_url}/api/v1/public/orders/{order_id}/qr.png"


def cashier_url(public_url: str, order_id: str) -> str:
    return f"{public_url}/cashier/{order_id}"


def order_view(order: Order, registry: ChainRegistry, public_url: str) -> dict[str, Any]:
    chain = registry.get(order.chain_id)
    d = order.decimals
    return {
        "orderId": order.id,
        "orderNo": order.order_no,
        "custNo": order.cust_no,
        "status": order.status,
        "exceptions": sorted(order.exceptions or []),
        "chainId": str(order.chain_id),
        "network": chain.network if chain else f"chain-{order.chain_id}",
        "symbol": order.symbol,
        "tokenAddress": order.token_address,
        "decimals": d,
        "amount": format_amount(order.amount, d),
        "paidAmount": format_amount(order.paid_amount, d),
        "pendingAmount": format_amount(order.pending_amount, d),
        "toAddress": order.to_address,
        "payoutAddress": order.payout_address,
        "factory": order.factory,
        "depositSalt": order.deposit_salt,
        "cashierUrl": cashier_url(public_url, order.id),
        "paymentUri": payment_uri(order),
        "qrCode": qr_url(public_url, order.id),
        "expireTime": order.expire_time_ms,
        "createTime": order.create_time_ms,
        "completeTime": order.complete_time_ms,
        "txId": order.tx_id,
        "confirmations": order.confirmations,
        "description": order.description,
        "metadata": order.metadata_json,
        "redirectUrl": order.redirect_url,
    }


def public_order_view(
    order: Order, registry: ChainRegistry, public_url: str, server_time_ms: int
) -> dict[str, Any]:
    chain = registry.get(order.chain_id)
    d = order.decimals
    return {
        "orderId": order.id,
        "status": order.status,
        "chainId": str(order.chain_id),
        "network": chain.network if chain else f"chain-{order.chain_id}",
        "symbol": order.symbol,
        "tokenAddress": order.token_address,
        "decimals": d,
        "amount": format_amount(order.amount, d),
        "paidAmount": format_amount(order.paid_amount, d),
        "pendingAmount": format_amount(order.pending_amount, d),
        "toAddress": order.to_address,
        "paymentUri": payment_uri(order),
        "qrCode": qr_url(public_url, order.id),
        "confirmations": order.confirmations,
        "requiredConfirmations": chain.confirmations if chain else 0,
        "expireTime": order.expire_time_ms,
        "serverTime": server_time_ms,
        "redirectUrl": order.redirect_url if order.status == OrderStatus.COMPLETED else None,
        "description": order.description,
    }
