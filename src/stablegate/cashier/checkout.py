"""What the cashier page tells the customer in each case (docs/DESIGN.md §9): the amount still
due, who is paid, what arrived, and what to do next.

:func:`checkout_state` names the case from the public order view (which carries the amount
due, the merchant, every transfer seen and the exceptions); the page's script
(static/cashier.js ``checkoutState``) mirrors it for live updates.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from stablegate.models.order import OrderException, OrderStatus
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.rates.currencies import FIAT_MINOR_UNITS

# Transfers to the deposit that are not the order's token: shown to the customer as such.
WRONG_KINDS = frozenset({PaymentKind.WRONG_TOKEN.value, PaymentKind.UNSUPPORTED_TOKEN.value})


def to_units(amount: str, decimals: int) -> int:
    whole, _, fraction = amount.partition(".")
    scale: int = 10**decimals
    return int(whole or "0") * scale + int((fraction + "0" * decimals)[:decimals] or "0")


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


def fiat_text(amount: str, currency: str) -> str:
    """A fiat amount as prices are written: ``"72"`` CNY -> ``"72.00"``, ``"1500"`` JPY ->
    ``"1500"``. Padded to the currency's minor unit, never rounded: a merchant's price with
    more decimals than that is shown as given."""
    value = Decimal(amount)
    minor = FIAT_MINOR_UNITS.get(currency, 2)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < minor:
        value = value.quantize(Decimal(1).scaleb(-minor))
    return format(value, "f")


def wrong_payments(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        p
        for p in view.get("payments") or []
        if p.get("kind") in WRONG_KINDS and p.get("status") != PaymentStatus.ORPHANED
    ]


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
