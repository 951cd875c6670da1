"""Greenfield (BTCPay) webhook deliveries of the invoices made through the Greenfield API, for
the webhook worker (:mod:`stablegate.webhooks.callbacks`): each order event becomes at most one
BTCPay event, ``POST``-ed as JSON to the store's enabled webhook with the header
``BTCPay-Sig: sha256=<lowercase hex HMAC-SHA256 of the raw body, keyed with the webhook's
secret>``; any 2xx takes it, anything else is retried on the webhook schedule.

==========================  =========================  =======================================
order event                 Greenfield ``type``        extra fields
==========================  =========================  =======================================
order.created               InvoiceCreated
order.payment_seen          InvoiceReceivedPayment     afterExpiration false, payment
order.paid_late             InvoiceReceivedPayment     afterExpiration true, payment
order.confirming            InvoiceProcessing          overPaid
order.underpaid             InvoicePaymentSettled      afterExpiration, payment (final, short)
order.overpaid              InvoicePaymentSettled      afterExpiration, payment (after Settled)
order.completed             InvoiceSettled             overPaid, manuallyMarked
order.expired               InvoiceExpired             partiallyPaid
order.cancelled             InvoiceInvalid             manuallyMarked true
==========================  =========================  =======================================

``order.payment_reversed`` and ``order.wrong_token`` have no Greenfield event and are skipped, as
is every event the webhook did not subscribe to. A completing payment gives InvoiceSettled only
(one event per order event): BTCPay would also send InvoicePaymentSettled for it.

Every body has ``deliveryId`` (the event's id, the same on every attempt, so a receiver can
dedupe on it), ``webhookId``, ``originalDeliveryId`` (the same id), ``isRedelivery`` (true from
the second attempt), ``type``, ``timestamp`` (the event's time, Unix seconds), ``storeId``,
``invoiceId`` and the invoice's ``metadata``. ``payment`` is ``{id, receivedDate, value, fee,
status, destination}`` of the order's latest transfer, ``value`` what the invoice has received
in all at that event (the order event does not carry the transfer's own amount), in the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

from stablegate.compat.greenfield.credentials import store_id_of
from stablegate.compat.greenfield.webhooks import (
    INVOICE_CREATED,
    INVOICE_EXPIRED,
    INVOICE_INVALID,
    INVOICE_PAYMENT_SETTLED,
    INVOICE_PROCESSING,
    INVOICE_RECEIVED_PAYMENT,
    INVOICE_SETTLED,
)
from stablegate.models.order import NotifyFormat, OrderException
from stablegate.webhooks.callbacks import CallbackFormat, CallbackRequest
from stablegate.webhooks.claims import Claim

SIGNATURE_HEADER = "BTCPay-Sig"
USER_AGENT = "stablegate-greenfield-webhooks"
FORMAT = "greenfield"  # where the invoice's own fields sit in the order's metadata

EVENT_TYPES: dict[str, str] = {
    "order.created": INVOICE_CREATED,
    "order.payment_seen": INVOICE_RECEIVED_PAYMENT,
    "order.paid_late": INVOICE_RECEIVED_PAYMENT,
    "order.confirming": INVOICE_PROCESSING,
    "order.underpaid": INVOICE_PAYMENT_SETTLED,
    "order.overpaid": INVOICE_PAYMENT_SETTLED,
    "order.completed": INVOICE_SETTLED,
    "order.expired": INVOICE_EXPIRED,
    "order.cancelled": INVOICE_INVALID,
}


def greenfield_type(event_type: str) -> str | None:
    return EVENT_TYPES.get(event_type)


def btcpay_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _data(claim: Claim) -> dict[str, Any]:
    data = claim.payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("the event carries no order")
    return data


def _received(data: dict[str, Any]) -> Decimal:
    return Decimal(str(data.get("paidAmount") or "0")) + Decimal(
        str(data.get("pendingAmount") or "0")
    )


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _payment(data: dict[str, Any], event_type: str, time_s: int) -> dict[str, Any]:
    settled = event_type in ("order.underpaid", "order.overpaid")
    return {
        "id": str(data.get("txId") or ""),
        "receivedDate": time_s,
        "value": _text(_received(data)),
        "fee": "0",
        "status": "Settled" if settled else "Processing",
        "destination": str(data.get("toAddress") or ""),
    }


def _stored(data: dict[str, Any]) -> dict[str, Any]:
    metadata = data.get("metadata")
    stored = metadata.get(FORMAT) if isinstance(metadata, dict) else None
    return stored if isinstance(stored, dict) else {}


def event_body(claim: Claim) -> dict[str, Any]:
    """The Greenfield event of ``claim`` (its order event must have a Greenfield type)."""
    data = _data(claim)
    event_type = str(claim.payload.get("type"))
    kind = greenfield_type(event_type)
    if kind is None:
        raise ValueError(f"{event_type} has no Greenfield event")
    time_s = int(claim.payload.get("createTime") or claim.created_at_ms) // 1000
    stored = _stored(data)
    exceptions = set(data.get("exceptions") or [])
    body: dict[str, Any] = {
        "deliveryId": claim.event_id,
        "webhookId": claim.webhook_id or "",
        "originalDeliveryId": claim.event_id,
        "isRedelivery": claim.attempt > 1,
        "type": kind,
        "timestamp": time_s,
        "storeId": store_id_of(claim.merchant_id),
        "invoiceId": str(data["orderId"]),
        "metadata": stored.get("metadata") or {},
    }
    if kind in (INVOICE_RECEIVED_PAYMENT, INVOICE_PAYMENT_SETTLED):
        late = event_type == "order.paid_late" or OrderException.PAID_LATE.value in exceptions
        method = stored.get("paymentMethod")
        body["afterExpiration"] = late
        body["paymentMethodId"] = method if isinstance(method, str) else str(data["symbol"])
        body["payment"] = _payment(data, event_type, time_s)
    elif kind == INVOICE_PROCESSING:
        body["overPaid"] = _received(data) > Decimal(str(data["amount"]))
    elif kind == INVOICE_SETTLED:
        body["overPaid"] = OrderException.OVERPAID.value in exceptions
        body["manuallyMarked"] = OrderException.MANUAL.value in exceptions
    elif kind == INVOICE_EXPIRED:
        body["partiallyPaid"] = _received(data) > 0
    elif kind == INVOICE_INVALID:
        body["manuallyMarked"] = True  # the merchant's cancellation is the only way there
    return body


class GreenfieldCallback:
    def skip_reason(self, claim: Claim) -> str | None:
        event_type = str(claim.payload.get("type"))
        kind = greenfield_type(event_type)
        if kind is None:
            return f"{event_type} has no Greenfield event"
        if claim.subscribed and kind not in claim.subscribed:
            return f"the store's Greenfield webhook did not subscribe to {kind}"
        return None

    def request(self, claim: Claim, url: str) -> CallbackRequest:
        if not claim.secrets:
            raise ValueError("the claim carries no webhook secret")
        body = json.dumps(
            event_body(claim), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: btcpay_signature(claim.secrets[0], body),
        }
        return CallbackRequest("POST", url, body, headers)

    def acknowledged(self, status_code: int, body: bytes) -> bool:
        return True  # any 2xx (the worker checks the status first)


def greenfield_callback_formats() -> dict[str, CallbackFormat]:
    return {NotifyFormat.GREENFIELD.value: GreenfieldCallback()}
