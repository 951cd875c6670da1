"""A Greenfield create-invoice body, checked, in the order service's terms.

The body is ``{amount, currency, metadata, checkout}``. ``amount`` is a decimal string (a JSON
number is taken too) in ``currency``: a fiat currency (priced by the rate engine, the rate
locked on the order) or the paying token's own symbol (no conversion); no currency is the
store's default. ``checkout`` is null or an object whose ``paymentMethods`` names the methods
offered: the invoice starts on the first (``defaultPaymentMethod`` when it is among them); with
two or more the customer picks one in the cashier (compat.greenfield.method_choice; a fiat
invoice offers only those of them whose token has a fiat price),
``expirationMinutes`` the lifetime (1 to 1440 minutes) and ``redirectURL`` the page the cashier
returns to (``{InvoiceId}`` and ``{OrderId}`` are filled in). Its other options, ``receipt``
and ``additionalSearchTerms`` are accepted and ignored (docs/INTEGRATIONS.md lists them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from stablegate.compat.greenfield.credentials import GreenfieldCredential
from stablegate.compat.greenfield.payment_methods import PaymentMethod, find_method
from stablegate.compat.greenfield.wire import InvalidFields, invalid
from stablegate.rates.currencies import STABLECOINS, is_fiat
from stablegate.rates.pricing import decimal_text

DEFAULT_EXPIRATION_MINUTES = 15
MAX_EXPIRATION_MINUTES = 1440
MAX_STORED_BYTES = 4096  # the order's metadata limit (orders.schemas)
MAX_DESCRIPTION = 256
MAX_URL = 2048


@dataclass(frozen=True)
class InvoiceRequest:
    amount: Decimal
    currency: str
    method: PaymentMethod
    method_sent: str  # the payment method id as the client wrote it
    offered: tuple[PaymentMethod, ...]  # every method named, once each, in the client's order
    expire_seconds: int
    redirect_url: str | None
    metadata: dict[str, Any] | None  # echoed as sent
    checkout: dict[str, Any]  # the checkout options as sent, echoed
    order_id: str | None  # metadata.orderId as text, for the orderId= filter
    description: str | None


def _amount(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid("amount", "the amount is required, as a decimal string")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise invalid("amount", "the amount is not a decimal number") from None
    if not amount.is_finite() or amount <= 0:
        raise invalid("amount", "the amount must be more than 0")
    return amount


def _currency(value: object, credential: GreenfieldCredential, method: PaymentMethod) -> str:
    if value is None or value == "":
        return credential.currency
    if not isinstance(value, str):
        raise invalid("currency", "the currency must be a string")
    code = value.strip().upper()
    if code != method.symbol and not is_fiat(code):
        raise invalid("currency", f"{value[:16]!r} is neither a fiat currency nor {method.symbol}")
    return code


def _method(
    checkout: dict[str, Any], methods: list[PaymentMethod], credential: GreenfieldCredential
) -> tuple[PaymentMethod, str, tuple[PaymentMethod, ...]]:
    sent = checkout.get("paymentMethods")
    if sent is None or sent == []:
        default = next(
            (
                m
                for m in methods
                if (m.chain_id, m.symbol) == (credential.chain_id, credential.symbol)
            ),
            None,
        )
        if default is None:
            raise invalid("checkout.paymentMethods", "the store has no default payment method")
        return default, default.id, (default,)
    if not isinstance(sent, list):
        raise invalid("checkout.paymentMethods", "a list of payment method ids is expected")
    chosen: list[tuple[PaymentMethod, str]] = []
    for index, item in enumerate(sent):
        found = find_method(methods, item) if isinstance(item, str) else None
        if found is None or not isinstance(item, str):
            raise invalid(f"checkout.paymentMethods[{index}]", "not a payment method of the store")
        chosen.append((found, item))
    offered = tuple({method.id: method for method, _ in chosen}.values())
    preferred = checkout.get("defaultPaymentMethod")
    if isinstance(preferred, str):
        for method, item in chosen:
            if find_method([method], preferred) is not None:
                return method, item, offered
    return *chosen[0], offered


def _expiration(value: object) -> int:
    if value is None:
        return DEFAULT_EXPIRATION_MINUTES * 60
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid("checkout.expirationMinutes", "a number of minutes is expected")
    seconds = round(value * 60)
    if not 60 <= seconds <= MAX_EXPIRATION_MINUTES * 60:
        raise invalid(
            "checkout.expirationMinutes", f"between 1 and {MAX_EXPIRATION_MINUTES} minutes"
        )
    return seconds


def _redirect(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid("checkout.redirectURL", "a URL is expected")
    parts = urlsplit(value)
    if (
        len(value) > MAX_URL
        or parts.scheme not in {"http", "https"}
        or not parts.hostname
        or any(ch.isspace() or ord(ch) < 0x20 for ch in value)
    ):
        raise invalid("checkout.redirectURL", "an absolute http or https URL is expected")
    return value


def _description(metadata: dict[str, Any] | None) -> str | None:
    text = (metadata or {}).get("itemDesc")
    if not isinstance(text, str):
        return None
    cleaned = "".join(c for c in text if ord(c) >= 32 and ord(c) != 127).strip()
    return cleaned[:MAX_DESCRIPTION] or None


def parse_invoice_request(
    body: dict[str, Any], methods: list[PaymentMethod], credential: GreenfieldCredential
) -> InvoiceRequest:
    """The request, or 422 naming the first field that is not acceptable."""
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("metadata", "an object is expected")
    checkout = body.get("checkout")
    if checkout is None:
        checkout = {}
    if not isinstance(checkout, dict):
        raise invalid("checkout", "an object is expected")
    method, method_sent, offered = _method(checkout, methods, credential)
    amount = _amount(body.get("amount"))
    currency = _currency(body.get("currency"), credential, method)
    if is_fiat(currency):
        # Only a token with a fiat price can be priced at the customer's pick.
        offered = tuple(m for m in offered if m == method or m.symbol in STABLECOINS)
    order_id = (metadata or {}).get("orderId")
    request = InvoiceRequest(
        amount=amount,
        currency=currency,
        method=method,
        method_sent=method_sent,
        offered=offered,
        expire_seconds=_expiration(checkout.get("expirationMinutes")),
        redirect_url=_redirect(checkout.get("redirectURL")),
        metadata=metadata,
        checkout=checkout,
        order_id=None if order_id is None or isinstance(order_id, dict | list) else str(order_id),
        description=_description(metadata),
    )
    stored = json.dumps(stored_fields(request), separators=(",", ":"), ensure_ascii=False)
    if len(stored.encode("utf-8")) > MAX_STORED_BYTES - 64:
        raise InvalidFields([("metadata", "metadata and checkout together exceed 4 KB")])
    return request


def stored_fields(request: InvoiceRequest) -> dict[str, Any]:
    """What the order keeps (under ``metadata.greenfield``) to answer in Greenfield's terms.
    An invoice offering several methods also keeps their ids and ``activated: false`` until
    the customer picks one."""
    fields: dict[str, Any] = {
        "amount": decimal_text(request.amount),
        "currency": request.currency,
        "metadata": request.metadata,
        "orderId": request.order_id,
        "checkout": request.checkout,
        "paymentMethod": request.method_sent,
    }
    if len(request.offered) > 1:
        fields["offeredMethods"] = [method.id for method in request.offered]
        fields["activated"] = False
    return fields
