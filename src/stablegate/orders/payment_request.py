"""The payment request an order puts to the customer: the amount still due, the EIP-681 URI for
it, the cashier and QR URLs, and the QR image itself.

Two QR codes: ``qrCode`` holds the bare deposit address (every wallet scans it; the customer
types the amount), ``paymentQrCode`` the EIP-681 transfer request for the amount still due
(token, chain, recipient and amount in one scan, where the wallet supports it). The EIP-681 one
changes when a payment arrives, so its URL carries the due amount it was made for.

QR codes are PNGs rendered on first request and cached, never on the order-creation path:
segno is pure Python (milliseconds per code), so rendering inside createQrOrder would cap
order creation; caching by content is exact.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import segno

from stablegate.models import Order

# What the QR code holds: the deposit address (every wallet scans it) or the EIP-681 URI.
QR_FORMATS = ("address", "eip681")


def due_amount(order: Order) -> int:
    """Base units still to send: the amount less what was received, final or not yet final
    (a payment seen on chain counts at once, so nobody is asked to pay it twice)."""
    return max(order.amount - order.paid_amount - order.pending_amount, 0)


def payment_uri(order: Order) -> str:
    """EIP-681 transfer request for the amount still due, in base units (wallets parse it
    unevenly; the page shows the amount as text too)."""
    return (
        f"ethereum:{order.token_address}@{order.chain_id}/transfer"
        f"?address={order.to_address}&uint256={due_amount(order)}"
    )


def cashier_url(public_url: str, order_id: str) -> str:
    return f"{public_url}/cashier/{order_id}"


def qr_path(order_id: str, qr_format: str = "address") -> str:
    path = f"/api/v1/public/orders/{order_id}/qr.png"
    return path + "?format=eip681" if qr_format == "eip681" else path


def qr_url(public_url: str, order_id: str) -> str:
    return public_url + qr_path(order_id)


def payment_qr_path(order: Order) -> str:
    """The EIP-681 QR image's path, naming the due amount it shows (a new URL once it changes,
    so a cached image is never a stale request)."""
    return f"{qr_path(order.id, 'eip681')}&due={due_amount(order)}"


def payment_qr_url(public_url: str, order: Order) -> str:
    return public_url + payment_qr_path(order)


def qr_content(order: Order, qr_format: str) -> str:
    return payment_uri(order) if qr_format == "eip681" else order.to_address


@lru_cache(maxsize=4096)
def qr_png(content: str, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(content, error="m", micro=False).save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def qr_data_url(content: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(content)).decode()
