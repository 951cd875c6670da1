"""An EPay or Epusdt order request made into an order of the order service (no order model of
its own): the merchant's number is the foreign ``out_trade_no`` / ``order_id`` (unique per
merchant, so a repeated request returns the same order), the amount is fiat in the
credential's currency priced by the rate engine, and the foreign fields the callbacks and
queries echo are kept in the order's ``metadata`` under the format's name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.compat.epay.credentials import EpayCredential
from stablegate.errors import Conflict, InvalidRequest
from stablegate.models import Order
from stablegate.models.order import NotifyFormat
from stablegate.orders import service
from stablegate.orders.context import OrderContext
from stablegate.orders.schemas import CreateOrderRequest
from stablegate.outbound import DestinationError, parse_webhook_url
from stablegate.rates.pricing import decimal_text, parse_fiat_amount
from stablegate.web.errors import validated

_TRADE_NO = re.compile(r"[\x21-\x7e]{1,64}")
MAX_NAME = 256


@dataclass(frozen=True)
class ForeignOrder:
    """What a foreign create request asks for, checked, in the gateway's terms."""

    notify_format: NotifyFormat
    trade_no: str  # out_trade_no / order_id: the merchant's order number
    fiat_amount: Decimal
    notify_url: str
    return_url: str | None
    name: str | None
    echoed: dict[str, str]  # the foreign fields the callback and the queries give back


def checked_trade_no(value: str, field: str) -> str:
    if not _TRADE_NO.fullmatch(value):
        raise InvalidRequest(f"{field} must be 1 to 64 visible ASCII characters")
    return value


def checked_amount(value: Decimal, field: str) -> Decimal:
    """A positive amount with at most 8 decimals (the rate engine's fiat amounts)."""
    try:
        return parse_fiat_amount(decimal_text(value))
    except InvalidRequest:
        raise InvalidRequest(
            f"{field} must be a positive amount with at most 8 decimals", code="invalid_amount"
        ) from None


def checked_notify_url(value: str, field: str) -> str:
    try:
        parse_webhook_url(value)
    except DestinationError as exc:
        raise InvalidRequest(f"{field}: {exc}", code="invalid_notify_url") from None
    return value


def checked_return_url(value: str, field: str) -> str:
    if not re.fullmatch(r"https?://[\x21-\x7e]{1,2040}", value):
        raise InvalidRequest(f"{field} must be an absolute http or https URL")
    return value


def checked_name(value: str, field: str) -> str:
    if len(value) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidRequest(f"{field} is at most {MAX_NAME} characters of text")
    return value


async def create_foreign_order(
    session: AsyncSession,
    clock: Clock,
    ctx: OrderContext,
    credential: EpayCredential,
    foreign: ForeignOrder,
) -> tuple[Order, bool]:
    """The order for ``foreign`` through the order service: (order, created). A repeat of the
    same request returns the same order; the same number with other fields, or made through
    another credential or format, is ``order_conflict``."""
    fields: dict[str, Any] = {
        "chainId": credential.chain_id,
        "symbol": credential.symbol,
        "amount": decimal_text(foreign.fiat_amount),
        "currency": credential.currency,
        "orderNo": foreign.trade_no,
        "notifyUrl": foreign.notify_url,
        "metadata": {foreign.notify_format.value: foreign.echoed},
    }
    if foreign.return_url is not None:
        fields["redirectUrl"] = foreign.return_url
    if foreign.name:
        fields["description"] = foreign.name
    req = validated(CreateOrderRequest, fields)
    try:
        order, created = await service.create_order(
            session, clock, ctx, merchant_id=credential.merchant_id, req=req
        )
    except Conflict as exc:
        raise Conflict(
            "an order with this number exists with different fields", code=exc.code
        ) from None
    if created:
        order.notify_format = foreign.notify_format
        order.compat_key_id = credential.pid
        await session.flush()
    elif order.compat_key_id != credential.pid or order.notify_format != foreign.notify_format:
        raise Conflict(
            "an order with this number exists with different fields", code="order_conflict"
        )
    return order, created


def echoed_fields(order: Order, notify_format: NotifyFormat) -> dict[str, str]:
    """The foreign fields stored with the order (empty for an order made elsewhere)."""
    stored = (order.metadata_json or {}).get(notify_format.value)
    if not isinstance(stored, dict):
        return {}
    return {str(k): str(v) for k, v in stored.items() if isinstance(v, str)}
