"""What the cashier page tells the customer in each case (docs/DESIGN.md §9): the amount still
due, who is paid, what arrived, and what to do next.

:func:`checkout_view` completes the public order view with the fields the page renders
(``dueAmount``, a ``paymentUri`` for the due amount and its QR, ``merchant``, ``payments``,
``exceptions``, ``txId``/``explorerTxUrl``/``completeTime``): fields the view already carries are
kept, missing ones are computed from the order. :func:`checkout_state` names the case; the
page's script (static/cashier.js ``checkoutState``) mirrors it for live updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.chain.registry import ChainRegistry
from stablegate.models import Merchant, Order, Payment
from stablegate.models.order import OrderException, OrderStatus
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.money import format_amount
from stablegate.orders.payment_request import qr_data_url

# Transfers to the deposit that are not the order's token: shown to the customer as such.
WRONG_KINDS = frozenset({PaymentKind.WRONG_TOKEN.value, PaymentKind.UNSUPPORTED_TOKEN.value})


@dataclass(frozen=True)
class OrderParties:
    """What the public view may not carry yet: the merchant and the transfers seen."""

    merchant_name: str
    payments: list[Payment]


async def load_parties(session: AsyncSession, order: Order) -> OrderParties:
    name = await session.scalar(select(Merchant.name).where(Merchant.id == order.merchant_id))
    rows = await session.scalars(
        select(Payment)
        .where(Payment.order_id == order.id, Payment.kind != PaymentKind.FLUSH)
        .order_by(Payment.block_number, Payment.log_index)
    )
    return OrderParties(name or "", list(rows))


def to_units(amount: str, decimals: int) -> int:
    whole, _, fraction = amount.partition(".")
    scale: int = 10**decimals
    return int(whole or "0") * scale + int((fraction + "0" * decimals)[:decimals] or "0")


def due_payment_uri(view: dict[str, Any], due_units: int) -> str:
    """EIP-681 request for the amount still due (never the full amount after a part arrived)."""
    return (
        f"ethereum:{view['tokenAddress']}@{view['chainId']}/transfer"
        f"?address={view['toAddress']}&uint256={due_units}"
    )


def _payment_json(payment: Payment, order: Order, registry: ChainRegistry) -> dict[str, Any]:
    chain = registry.get(order.chain_id)
    token = chain.token_by_address(payment.token_address) if chain else None
    decimals = token.decimals if token else None
    return {
        "txId": payment.tx_hash,
        "logIndex": payment.log_index,
        "amount": format_amount(payment.amount, decimals)
        if decimals is not None
        else str(payment.amount),
        "decimals": decimals,
        "symbol": token.symbol if token else None,
        "tokenAddress": payment.token_address,
        "kind": str(payment.kind),
        "late": payment.late,
        "status": str(payment.status),
        "explorerTxUrl": None,
        "time": payment.block_time_ms,
    }


def checkout_view(
    view: dict[str, Any], order: Order, parties: OrderParties, registry: ChainRegistry
) -> dict[str, Any]:
    """The public view with every field the page renders (see the module docstring)."""
    full = dict(view)
    if "dueAmount" not in full:
        due = max(order.amount - order.paid_amount - order.pending_amount, 0)
        full["dueAmount"] = format_amount(due, order.decimals)
        full["paymentUri"] = due_payment_uri(full, due)
    full.setdefault("paymentQrDataUrl", qr_data_url(full["paymentUri"]))
    full.setdefault("exceptions", sorted(order.exceptions or []))
    full.setdefault(
        "merchant", {"name": parties.merchant_name, "logoUrl": None, "supportContact": None}
    )
    full.setdefault("txId", order.tx_id)
    full.setdefault("completeTime", order.complete_time_ms)
    full.setdefault("explorerTxUrl", None)
    full.setdefault(
        "payments",
        [
            _payment_json(p, order, registry)
            for p in parties.payments
            if p.status != PaymentStatus.ORPHANED
        ],
    )
    return full


def received_units(view: dict[str, Any]) -> int:
    decimals = int(view["decimals"])
    return to_units(str(view["paidAmount"]), decimals) + to_units(
        str(view["pendingAmount"]), decimals
    )


def checkout_state(view: dict[str, Any]) -> str:
    """pending, partial, confirming, paid, paid_over, late, expired_partial, expired, cancelled."""
    decimals = int(view["decimals"])
    amount = to_units(view["amount"], decimals)
    received = received_units(view)
    exceptions = set(view.get("exceptions") or [])
    status = view["status"]
    if status == OrderStatus.COMPLETED:
        over = received > amount or OrderException.OVERPAID in exceptions
        return "paid_over" if over else "paid"
    if status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED):
        if OrderException.PAID_LATE in exceptions or (received >= amount > 0):
            return "late"
        return "expired_partial" if received > 0 else str(status)
    if status == OrderStatus.PENDING and received > 0:
        return "partial"
    return str(status)


def wrong_payments(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in view.get("payments") or [] if p.get("kind") in WRONG_KINDS]


def support_link(contact: str | None) -> dict[str, str] | None:
    """The merchant's support contact as text plus a safe href (mailto or http(s)) if any."""
    if not contact:
        return None
    text = contact.strip()
    if "@" in text and " " not in text and "/" not in text and ":" not in text:
        return {"text": text, "href": "mailto:" + text}
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.netloc and " " not in text:
        return {"text": text, "href": text}
    return {"text": text, "href": ""}


def logo_source(url: str | None) -> str | None:
    """An https logo or a data:image URL; anything else is not shown."""
    if not url:
        return None
    if url.startswith("data:image/") and ";base64," in url and '"' not in url:
        return url
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc and " " not in url:
        return url
    return None


def logo_origin(url: str | None) -> str | None:
    """The https origin the page's CSP must allow for the logo (none for data: URLs)."""
    source = logo_source(url)
    if source is None or source.startswith("data:"):
        return None
    parts = urlsplit(source)
    return f"https://{parts.netloc}"
