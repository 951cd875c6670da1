"""An order rendered as a Greenfield invoice and as its payment methods.

The invoice's ``amount`` and ``currency`` are the ones asked for (fiat, or the token's own);
``checkoutLink`` is the order's cashier page. Its one payment method is the order's token on its
chain: ``amount`` and ``due`` in the token, ``rate`` the invoice currency per token (locked at
creation; 1 for an invoice in the token itself), ``totalPaid`` what arrived, final or seen.
Each credited transfer is a payment ``<txid>-<logIndex>`` (seen: Processing, final: Settled,
dropped by a reorg: Invalid), received at its block's time.

An invoice offering several methods lists each of them, ``activated: false`` with an empty
``destination`` and no ``paymentLink`` until the customer picks one in the cashier; then the
chosen one alone, activated. Before the pick a fiat invoice's methods are not priced yet
(``amount``, ``due`` and ``rate`` are ``"0"``); a token invoice's are its amount, at rate 1.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stablegate.chain.registry import ChainRegistry
from stablegate.compat.greenfield.credentials import store_id_of
from stablegate.compat.greenfield.invoices import greenfield_fields
from stablegate.compat.greenfield.method_choice import offered_methods
from stablegate.compat.greenfield.payment_methods import method_of
from stablegate.compat.greenfield.statuses import invoice_status, markable
from stablegate.compat.greenfield.wire import seconds
from stablegate.models import Order, Payment
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.money import format_amount
from stablegate.orders.payment_request import cashier_url, payment_uri
from stablegate.rates.pricing import decimal_text

MONITORING_MINUTES = 1440  # what BTCPay's clients are told; the watcher never stops watching
CHECKOUT_OPTIONS = (
    "speedPolicy",
    "paymentMethods",
    "defaultPaymentMethod",
    "lazyPaymentMethods",
    "expirationMinutes",
    "monitoringMinutes",
    "paymentTolerance",
    "redirectURL",
    "redirectAutomatically",
    "requiresRefundEmail",
    "checkoutType",
    "defaultLanguage",
)
_PAYMENT_STATUS = {
    PaymentStatus.SEEN: "Processing",
    PaymentStatus.FINAL: "Settled",
    PaymentStatus.ORPHANED: "Invalid",
}


def _amount_asked(order: Order) -> tuple[str, str]:
    stored = greenfield_fields(order)
    amount, currency = stored.get("amount"), stored.get("currency")
    if isinstance(amount, str) and isinstance(currency, str):
        return amount, currency
    if order.fiat_amount is not None and order.fiat_currency is not None:
        return order.fiat_amount, order.fiat_currency
    return format_amount(order.amount, order.decimals), order.symbol


def _rate(order: Order) -> Decimal:
    return Decimal(order.rate) if order.rate is not None else Decimal(1)


def _checkout(order: Order) -> dict[str, Any]:
    sent = greenfield_fields(order).get("checkout")
    options: dict[str, Any] = {name: None for name in CHECKOUT_OPTIONS}
    if isinstance(sent, dict):
        options.update({k: v for k, v in sent.items() if k in options})
    minutes = (order.expire_time_ms - order.create_time_ms) / 60_000
    options["expirationMinutes"] = int(minutes) if minutes == int(minutes) else minutes
    options["monitoringMinutes"] = MONITORING_MINUTES
    options["redirectURL"] = order.redirect_url
    if not options["paymentMethods"]:
        options["paymentMethods"] = [greenfield_fields(order).get("paymentMethod")]
    return options


def invoice_json(order: Order, public_url: str) -> dict[str, Any]:
    status, additional = invoice_status(order)
    amount, currency = _amount_asked(order)
    paid_tokens = Decimal(format_amount(order.paid_amount + order.pending_amount, order.decimals))
    paid = paid_tokens * _rate(order) if order.rate is not None else paid_tokens
    expiration = seconds(order.expire_time_ms) or 0
    return {
        "id": order.id,
        "storeId": store_id_of(order.merchant_id),
        "amount": amount,
        "paidAmount": decimal_text(paid.quantize(Decimal("0.00000001")).normalize()),
        "currency": currency,
        "type": "Standard",
        "checkoutLink": cashier_url(public_url, order.id),
        "createdTime": seconds(order.create_time_ms),
        "expirationTime": expiration,
        "monitoringExpiration": expiration + MONITORING_MINUTES * 60,
        "status": status.value,
        "additionalStatus": additional.value,
        "availableStatusesForManualMarking": markable(order),
        "archived": False,
        "metadata": greenfield_fields(order).get("metadata") or {},
        "checkout": _checkout(order),
        "receipt": None,
    }


def _payment(payment: Payment, order: Order) -> dict[str, Any]:
    return {
        "id": f"{payment.tx_hash}-{payment.log_index}",
        "receivedDate": payment.block_time_ms // 1000,
        "value": format_amount(payment.amount, order.decimals),
        "fee": "0",
        "status": _PAYMENT_STATUS[PaymentStatus(payment.status)],
        "destination": order.to_address,
    }


def _not_activated(order: Order, registry: ChainRegistry) -> list[dict[str, Any]]:
    return [
        {
            "paymentMethodId": option.id,
            "paymentMethod": option.id,
            "cryptoCode": option.symbol,
            "currency": option.symbol,
            "destination": "",
            "paymentLink": None,
            "rate": "1" if option.amount is not None else "0",
            "paymentMethodPaid": "0",
            "totalPaid": "0",
            "due": option.amount or "0",
            "amount": option.amount or "0",
            "paymentMethodFee": "0",
            "networkFee": "0",
            "payments": [],
            "activated": False,
            "additionalData": {},
        }
        for option in offered_methods(order, registry)
    ]


def invoice_payment_methods_json(
    order: Order, payments: list[Payment], registry: ChainRegistry
) -> list[dict[str, Any]]:
    if offered_methods(order, registry) and not order.paid_amount + order.pending_amount:
        return _not_activated(order, registry)
    received = order.paid_amount + order.pending_amount
    credited = [p for p in payments if p.kind == PaymentKind.CREDIT]
    sent_id = greenfield_fields(order).get("paymentMethod")
    method = (
        sent_id if isinstance(sent_id, str) else method_of(registry, order.chain_id, order.symbol)
    )
    return [
        {
            "paymentMethodId": method,
            "paymentMethod": method,  # the name before BTCPay 2.0, which older clients read
            "cryptoCode": order.symbol,
            "currency": order.symbol,
            "destination": order.to_address,
            "paymentLink": payment_uri(order),
            "rate": decimal_text(_rate(order)),
            "paymentMethodPaid": format_amount(received, order.decimals),
            "totalPaid": format_amount(received, order.decimals),
            "due": _signed_amount(order.amount - received, order.decimals),
            "amount": format_amount(order.amount, order.decimals),
            "paymentMethodFee": "0",
            "networkFee": "0",
            "payments": [_payment(p, order) for p in credited],
            "activated": True,
            "additionalData": {},
        }
    ]


def _signed_amount(units: int, decimals: int) -> str:
    """Negative when overpaid, as Greenfield's ``due`` is."""
    text = format_amount(abs(units), decimals)
    return f"-{text}" if units < 0 else text
