"""The statements that find webhook events and deliveries, and their tenant scoping.

``merchant_id`` is the merchant whose rows may be read, or None for the operator (the CLI),
who reads every merchant's. Every read of events or deliveries starts from these statements,
so no endpoint or command can forget the filter.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, select

from stablegate.models import WebhookDelivery, WebhookEvent
from stablegate.webhooks.state import RESENDABLE_IN_BULK


def readable_events(merchant_id: str | None) -> Select[WebhookEvent]:
    statement = select(WebhookEvent)
    if merchant_id is not None:
        statement = statement.where(WebhookEvent.merchant_id == merchant_id)
    return statement


def resendable_events(merchant_id: str) -> ColumnElement[bool]:
    """The merchant's events that a bulk resend puts back in the queue (failed, no endpoint)."""
    return and_(
        WebhookEvent.merchant_id == merchant_id, WebhookEvent.status.in_(RESENDABLE_IN_BULK)
    )


def readable_deliveries(
    merchant_id: str | None,
) -> Select[WebhookDelivery, WebhookEvent]:
    """Delivery attempts with their event (the log shows the event's type and status)."""
    statement = select(WebhookDelivery, WebhookEvent).join(
        WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id
    )
    if merchant_id is not None:
        statement = statement.where(WebhookDelivery.merchant_id == merchant_id)
    return statement
