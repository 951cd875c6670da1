"""Typed results: frozen dataclasses parsed from the gateway's JSON.

Amounts are :class:`decimal.Decimal` (the wire carries decimal strings; never floats), times are
Unix milliseconds as on the wire (``*_ms``), chain ids are integers. ``raw`` keeps the whole JSON
object, so fields a newer gateway adds are still reachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMING = "confirming"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    SEEN = "seen"
    FINAL = "final"
    ORPHANED = "orphaned"


class PaymentKind(StrEnum):
    """What a transfer to the order's address is; only ``credit`` counts towards the order."""

    CREDIT = "credit"  # the order's token
    BELOW_MIN = "below_min"  # the order's token, below the gateway's minimum
    WRONG_TOKEN = "wrong_token"  # another token the gateway knows: not credited
    UNSUPPORTED_TOKEN = "unsupported_token"  # a token the gateway does not know
    NATIVE = "native"  # the chain's own coin
    UNATTRIBUTED = "unattributed"


def _status(value: str, kind: type[StrEnum]) -> str:
    """The enum member when known; an unknown status from a newer gateway stays a plain str."""
    try:
        return kind(value)
    except ValueError:
        return value


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {type(value).__name__}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a decimal amount: {value!r}")
    return result


def _opt_decimal(value: Any) -> Decimal | None:
    return None if value is None else _decimal(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Payment:
    """One transfer to the order's deposit address, in whatever token it came.

    ``amount`` is in units of the token that arrived (``symbol``, ``decimals``) when the gateway
    knows that token; for any other token ``decimals`` is None and ``amount`` is in base units.
    Only ``kind == PaymentKind.CREDIT`` counts towards the order.
    """

    tx_id: str
    log_index: int
    from_address: str
    amount: Decimal
    block_number: int
    block_hash: str
    block_time: int  # Unix milliseconds, the block's timestamp
    status: str  # PaymentStatus: seen | final | orphaned
    kind: str = PaymentKind.CREDIT  # PaymentKind; an unknown kind stays a plain str
    token_address: str | None = None
    late: bool = False  # its block came after the order's expiry
    symbol: str | None = None
    decimals: int | None = None

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], order_token: tuple[str, str, int] | None = None
    ) -> Payment:
        """``order_token``: the order's (address, symbol, decimals), which gateways before
        ``symbol``/``decimals`` on payments leave implied for payments in the order's token."""
        token_address = _opt_str(data.get("tokenAddress"))
        symbol = _opt_str(data.get("symbol"))
        decimals = _opt_int(data.get("decimals"))
        same_token = (
            order_token is not None
            and token_address is not None
            and token_address.lower() == order_token[0].lower()
        )
        if "decimals" not in data and same_token and order_token is not None:
            symbol, decimals = order_token[1], order_token[2]
        return cls(
            tx_id=str(data["txId"]),
            log_index=int(data["logIndex"]),
            from_address=str(data["from"]),
            amount=_decimal(data["amount"]),
            block_number=int(data["blockNumber"]),
            block_hash=str(data["blockHash"]),
            block_time=int(data["blockTime"]),
            status=_status(str(data["status"]), PaymentStatus),
            kind=_status(str(data.get("kind") or PaymentKind.CREDIT), PaymentKind),
            token_address=token_address,
            late=bool(data.get("late", False)),
            symbol=symbol,
            decimals=decimals,
        )


@dataclass(frozen=True)
class Order:
    """A payment order as the gateway returns it (createQrOrder, contractPayment, webhooks)."""

    order_id: str
    order_no: str
    cust_no: str | None
    status: str  # OrderStatus; compare with OrderStatus.COMPLETED or "completed"
    exceptions: tuple[str, ...]  # underpaid, overpaid, paid_late, wrong_token, manual, ...
    chain_id: int
    network: str
    symbol: str
    token_address: str
    decimals: int
    amount: Decimal
    paid_amount: Decimal  # final
    pending_amount: Decimal  # seen, not final yet
    to_address: str  # the deposit address the customer pays
    payout_address: str
    factory: str | None  # with deposit_salt: what `flush` needs to collect without the gateway
    deposit_salt: str | None
    cashier_url: str
    payment_uri: str
    qr_code: str
    expire_time_ms: int
    create_time_ms: int
    complete_time_ms: int | None
    tx_id: str | None
    confirmations: int
    description: str | None = None
    metadata: Mapping[str, Any] | None = None
    redirect_url: str | None = None
    payments: tuple[Payment, ...] | None = None  # only on the one-order read
    qr_code_data_url: str | None = None  # only when created with inline_qr=True
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # amount - paid_amount - pending_amount, at least 0: what payment_uri asks for
    due_amount: Decimal | None = None
    payment_qr_code: str | None = None  # QR image of payment_uri (qr_code: the bare address)
    payment_qr_data_url: str | None = None  # only when created with inline_qr=True
    # Only for an order priced in fiat (created with currency=): the price asked, in
    # ``currency``; the rate locked at creation (fiat per token: 7.2 means 1 USDT = 7.2 CNY);
    # where the rate came from (e.g. "median(coinbase,kraken,okx)" or "fixed") and the time
    # of its oldest input. ``amount`` is always the token amount.
    fiat_amount: Decimal | None = None
    currency: str | None = None
    rate: Decimal | None = None
    rate_source: str | None = None
    rate_time_ms: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Order:
        payments = data.get("payments")
        token = (str(data["tokenAddress"]), str(data["symbol"]), int(data["decimals"]))
        amount = _decimal(data["amount"])
        paid, pending = _decimal(data["paidAmount"]), _decimal(data["pendingAmount"])
        # Older gateways send no dueAmount: the same rule, from the amounts.
        due = data.get("dueAmount")
        due_amount = _decimal(due) if due is not None else max(amount - paid - pending, Decimal(0))
        return cls(
            order_id=str(data["orderId"]),
            order_no=str(data["orderNo"]),
            cust_no=_opt_str(data.get("custNo")),
            status=_status(str(data["status"]), OrderStatus),
            exceptions=tuple(str(e) for e in data.get("exceptions") or ()),
            chain_id=int(data["chainId"]),
            network=str(data["network"]),
            symbol=str(data["symbol"]),
            token_address=str(data["tokenAddress"]),
            decimals=int(data["decimals"]),
            amount=amount,
            paid_amount=paid,
            pending_amount=pending,
            to_address=str(data["toAddress"]),
            payout_address=str(data["payoutAddress"]),
            factory=_opt_str(data.get("factory")),
            deposit_salt=_opt_str(data.get("depositSalt")),
            cashier_url=str(data["cashierUrl"]),
            payment_uri=str(data["paymentUri"]),
            qr_code=str(data["qrCode"]),
            expire_time_ms=int(data["expireTime"]),
            create_time_ms=int(data["createTime"]),
            complete_time_ms=_opt_int(data.get("completeTime")),
            tx_id=_opt_str(data.get("txId")),
            confirmations=int(data.get("confirmations") or 0),
            description=_opt_str(data.get("description")),
            metadata=data.get("metadata"),
            redirect_url=_opt_str(data.get("redirectUrl")),
            payments=(
                None if payments is None else tuple(Payment.from_json(p, token) for p in payments)
            ),
            qr_code_data_url=_opt_str(data.get("qrCodeDataUrl")),
            raw=dict(data),
            due_amount=due_amount,
            payment_qr_code=_opt_str(data.get("paymentQrCode")),
            payment_qr_data_url=_opt_str(data.get("paymentQrDataUrl")),
            fiat_amount=_opt_decimal(data.get("fiatAmount")),
            currency=_opt_str(data.get("currency")),
            rate=_opt_decimal(data.get("rate")),
            rate_source=_opt_str(data.get("rateSource")),
            rate_time_ms=_opt_int(data.get("rateTime")),
        )


@dataclass(frozen=True)
class OrderPage:
    """One page of :meth:`Client.list_orders`; pass ``next_cursor`` back for the next one."""

    items: tuple[Order, ...]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrderPage:
        return cls(
            items=tuple(Order.from_json(item) for item in data["items"]),
            next_cursor=_opt_str(data.get("nextCursor")),
        )


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery attempt from the gateway's log."""

    delivery_id: str
    event_id: str
    order_id: str
    type: str
    sequence: int
    event_status: str  # the event's status now: pending, delivered, failed, no_endpoint
    attempt: int
    url: str
    outcome: str  # this attempt: success, failure, error, skipped
    response_status: int | None
    response_body: str | None  # at most 256 bytes of what your endpoint answered
    error: str | None
    latency_ms: int
    attempt_time_ms: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Delivery:
        return cls(
            delivery_id=str(data["deliveryId"]),
            event_id=str(data["eventId"]),
            order_id=str(data["orderId"]),
            type=str(data["type"]),
            sequence=int(data["sequence"]),
            event_status=str(data["eventStatus"]),
            attempt=int(data["attempt"]),
            url=str(data["url"]),
            outcome=str(data["outcome"]),
            response_status=_opt_int(data.get("responseStatus")),
            response_body=_opt_str(data.get("responseBody")),
            error=_opt_str(data.get("error")),
            latency_ms=int(data["latencyMs"]),
            attempt_time_ms=int(data["attemptTime"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class DeliveryPage:
    """One page of :meth:`Client.deliveries`, newest attempt first."""

    items: tuple[Delivery, ...]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeliveryPage:
        return cls(
            items=tuple(Delivery.from_json(item) for item in data["items"]),
            next_cursor=_opt_str(data.get("nextCursor")),
        )


@dataclass(frozen=True)
class Token:
    symbol: str
    address: str
    decimals: int


@dataclass(frozen=True)
class Chain:
    """A chain the gateway takes orders on (``GET /api/v1/public/chains``)."""

    chain_id: int
    name: str
    network: str
    testnet: bool
    tokens: tuple[Token, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Chain:
        return cls(
            chain_id=int(data["chainId"]),
            name=str(data.get("name") or ""),
            network=str(data.get("network") or ""),
            testnet=bool(data.get("testnet", False)),
            tokens=tuple(
                Token(str(t["symbol"]), str(t["address"]), int(t["decimals"]))
                for t in data.get("tokens") or ()
            ),
            raw=dict(data),
        )


@dataclass(frozen=True)
class SigningKey:
    """The gateway's webhook key (``GET /api/v1/public/signing-key``), for V1 verification."""

    key_id: str  # matches the BlockATM-Key-Id header of webhooks signed with it
    algorithm: str
    public_key_pem: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SigningKey:
        return cls(
            key_id=str(data["keyId"]),
            algorithm=str(data["algorithm"]),
            public_key_pem=str(data["publicKeyPem"]),
        )


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook. Deduplicate on ``event_id`` (delivery is at least once)."""

    event_id: str
    type: str  # order.created, order.completed, order.payment_seen, ...
    sequence: int | None  # per order; process an order's events in this order
    create_time_ms: int | None
    order: Order | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    merchant_id: str | None = None  # whose event this is; verify_webhook compares it with yours

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WebhookEvent:
        order = data.get("data", data.get("order"))
        merchant_id = data.get("merchantId")
        return cls(
            event_id=str(data["eventId"]),
            type=str(data["type"]),
            sequence=_opt_int(data.get("sequence")),
            create_time_ms=_opt_int(data.get("createTime")),
            order=Order.from_json(order) if isinstance(order, Mapping) else None,
            raw=dict(data),
            merchant_id=merchant_id if isinstance(merchant_id, str) else None,
        )


@dataclass(frozen=True)
class FlushResult:
    """One ``deployAndFlushOne`` transaction, mined and successful."""

    tx_hash: str
    deposit_address: str
    payout: str
    token: str
    amount: int  # base units that left the deposit address (what the Flushed event says)
    deployed: bool  # True when this transaction also created the forwarder
    block_number: int
    gas_used: int
