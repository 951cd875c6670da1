"""The payment request an order puts to the customer: the EIP-681 URI, the cashier and QR URLs,
and the QR image itself.

QR codes are PNGs rendered on first request and cached, never on the order-creation path:
segno is pure Python (milliseconds per code), so rendering inside createQrOrder would cap
order creation; an order's QR content never changes, so caching by content is exact.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import segno

from stablegate.models import Order

# What the QR code holds: the deposit address (every wallet scans it) or the EIP-681 URI.
QR_FORMATS = ("address", "eip681")


def payment_uri(order: Order) -> str:
    """EIP-681 transfer request in base units (wallets parse it unevenly; the page shows text)."""
    return (
        f"ethereum:{order.token_address}@{order.chain_id}/transfer"
        f"?address={order.to_address}&uint256={order.amount}"
    )


def cashier_url(public_url: str, order_id: str) -> str:
    return f"{public_url}/cashier/{order_id}"


def qr_path(order_id: str, qr_format: str = "address") -> str:
    path = f"/api/v1/public/orders/{order_id}/qr.png"
    return path + "?format=eip681" if qr_format == "eip681" else path


def qr_url(public_url: str, order_id: str) -> str:
    return public_url + qr_path(order_id)


def qr_content(order: Order, qr_format: str) -> str:
    return payment_uri(order) if qr_format == "eip681" else order.to_address


@lru_cache(maxsize=4096)
def qr_png(content: str, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(content, error="m", micro=False).save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def qr_data_url(content: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(content)).decode()
