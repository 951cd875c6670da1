"""Wire shapes of the order endpoints (also the OpenAPI schema).

The response models are the one list of an order's fields (built by
:mod:`stablegate.orders.view`); their field names are the wire's camelCase names.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from stablegate.outbound import DestinationError, parse_webhook_url

_PRINTABLE_ID = r"^[\x21-\x7e]{1,64}$"


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 2048:
        raise ValueError("URL longer than 2048 characters")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http or https URL")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


def _notify_url(value: str | None) -> str | None:
    """The webhook guard's own check, so no stored URL can fail it at delivery time."""
    if value is None:
        return None
    try:
        parse_webhook_url(value)
    except DestinationError as exc:
        raise ValueError(str(exc)) from None
    return value


class CreateOrderRequest(BaseModel):
    # Only the wire's camelCase names: any other field (``notify_url`` for ``notifyUrl``) is
    # refused with ``unknown_field``, never silently dropped (web/errors.py).
    model_config = ConfigDict(extra="forbid")

    chain_id: Annotated[StrictStr | StrictInt, Field(alias="chainId")]
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=20)]
    amount: Annotated[StrictStr, Field(min_length=1, max_length=82)]
    order_no: Annotated[StrictStr | None, Field(alias="orderNo", pattern=_PRINTABLE_ID)] = None
    cust_no: Annotated[StrictStr | None, Field(alias="custNo", max_length=64)] = None
    notify_url: Annotated[StrictStr | None, Field(alias="notifyUrl")] = None
    redirect_url: Annotated[StrictStr | None, Field(alias="redirectUrl")] = None
    expire_seconds: Annotated[StrictInt, Field(alias="expireSeconds", ge=60, le=86400)] = 900
    description: Annotated[StrictStr | None, Field(max_length=256)] = None
    metadata: dict[str, Any] | None = None
    inline_qr: Annotated[StrictBool, Field(alias="inlineQr")] = False
    # ISO 4217 code: ``amount`` is then in this currency, converted to the token at the rate
    # locked at creation (``chainId`` and ``symbol`` still pick the token to pay).
    currency: Annotated[StrictStr | None, Field(pattern=r"^[A-Z]{3}$")] = None

    _check_notify_url = field_validator("notify_url")(_notify_url)
    _check_redirect_url = field_validator("redirect_url")(_http_url)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, separators=(",", ":")).encode()) > 4096:
            raise ValueError("metadata is larger than 4 KB")
        return value


class OrderRef(BaseModel):
    """Identifies one order by the gateway's id or the merchant's number."""

    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[StrictStr | None, Field(alias="orderId", max_length=64)] = None
    order_no: Annotated[StrictStr | None, Field(alias="orderNo", max_length=64)] = None


class PaymentOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)  # built with from_=, sent as "from"

    txId: str
    logIndex: int
    from_: str = Field(alias="from")
    tokenAddress: str
    # In the units of the token that arrived when the registry knows it (symbol and decimals
    # set); in base units for any other token (symbol and decimals null).
    amount: str
    symbol: str | None = None
    decimals: int | None = None
    blockNumber: int
    blockHash: str
    blockTime: int
    status: str  # seen | final | orphaned
    # credit | below_min | wrong_token | wrong_chain | unsupported_token | native | unattributed
    kind: str
    late: bool


class OrderOut(BaseModel):
    """The order object (createQrOrder's response and contractPayment's items)."""

    orderId: str
    orderNo: str
    custNo: str | None
    status: str
    exceptions: list[str]
    chainId: str
    network: str
    symbol: str
    tokenAddress: str
    decimals: int
    amount: str
    paidAmount: str
    pendingAmount: str
    dueAmount: str  # amount - paidAmount - pendingAmount, at least 0
    toAddress: str
    payoutAddress: str
    factory: str | None
    depositSalt: str | None
    cashierUrl: str
    paymentUri: str  # EIP-681 request for dueAmount
    qrCode: str  # QR image of the bare deposit address
    paymentQrCode: str  # QR image of paymentUri
    expireTime: int
    createTime: int
    completeTime: int | None
    txId: str | None
    confirmations: int
    description: str | None = None
    metadata: dict[str, Any] | None = None
    redirectUrl: str | None = None
    payments: list[PaymentOut] | None = None
    qrCodeDataUrl: str | None = None  # with inlineQr: the address QR as a data: URL
    paymentQrDataUrl: str | None = None  # with inlineQr: the EIP-681 QR as a data: URL
    # Only on orders priced in a fiat currency (createQrOrder with ``currency``): the amount
    # the merchant asked for, the rate locked at creation (fiat per token), where it came from
    # and the time of its oldest input (ms). ``amount`` stays the token amount.
    fiatAmount: str | None = None
    currency: str | None = None
    rate: str | None = None
    rateSource: str | None = None
    rateTime: int | None = None


class OrderPage(BaseModel):
    items: list[OrderOut]
    nextCursor: str | None


class MerchantOut(BaseModel):
    """Who the customer pays, as the merchant set it (``merchant set-policy``)."""

    name: str  # the display name, else the merchant's name
    logoUrl: str | None  # an https URL
    supportContact: str | None  # an email address, a URL or free text


class PublicPaymentOut(BaseModel):
    """A transfer to the order's address as the customer sees it, whatever token it was."""

    txId: str
    logIndex: int
    # In the units of the token that arrived when the registry knows it, else base units
    # (symbol and decimals null).
    amount: str
    symbol: str | None
    decimals: int | None
    tokenAddress: str
    # credit | below_min | wrong_token | wrong_chain | unsupported_token | native | unattributed
    kind: str
    late: bool  # its block came after the order's expireTime
    status: str  # seen (on chain, not final) | final | orphaned (dropped by a reorg)
    confirmations: int  # counted up to requiredConfirmations; final ones show that number
    explorerTxUrl: str | None
    time: int  # the block's time, ms


class PublicMethodOut(BaseModel):
    """A payment method the customer may choose for the order (an invoice offering several)."""

    id: str  # e.g. USDT-BSC
    chainId: str
    network: str
    chainName: str
    symbol: str
    amount: str | None  # in the token, when known before the choice (not for fiat prices)


class PublicOrderOut(BaseModel):
    """The cashier's view: nothing the customer should not see (no orderNo, custNo, metadata)."""

    orderId: str
    status: str
    exceptions: list[str]
    chainId: str
    network: str
    symbol: str
    tokenAddress: str
    decimals: int
    amount: str
    paidAmount: str
    pendingAmount: str
    dueAmount: str  # amount - paidAmount - pendingAmount, at least 0
    toAddress: str
    paymentUri: str  # EIP-681 request for dueAmount
    qrCode: str  # QR image of the bare deposit address
    paymentQrCode: str  # QR image of paymentUri
    paymentQrDataUrl: str  # the same image as a data: URL
    confirmations: int
    requiredConfirmations: int
    expireTime: int
    serverTime: int
    completeTime: int | None
    txId: str | None  # the transaction that completed the order
    explorerTxUrl: str | None  # its page on the chain's block explorer, if the chain has one
    redirectUrl: str | None
    description: str | None
    merchant: MerchantOut
    payments: list[PublicPaymentOut]
    # Only on orders priced in a fiat currency (createQrOrder with ``currency``): the amount
    # the merchant asked for, the rate locked at creation (fiat per token), where it came from
    # and the time of its oldest input (ms). ``amount`` stays the token amount.
    fiatAmount: str | None = None
    currency: str | None = None
    rate: str | None = None
    rateSource: str | None = None
    rateTime: int | None = None
    # Only while the customer still has to choose how to pay (an invoice offering several
    # methods): the choices, and every address, payment request and QR field is "" until then.
    paymentMethods: list[PublicMethodOut] | None = None
