"""A store's Greenfield webhooks, as BTCPay's ``StoreWebhookData``: ``{id, enabled,
automaticRedelivery, url, authorizedEvents: {everything, specificEvents}}`` and, only in the
answer to a create, the ``secret``.

A store (merchant) has one enabled webhook: the one its invoices' events go to. Creating a
webhook disables the store's others (the WooCommerce plugin makes a new one when its settings
are saved again, and a shop must not get every event twice); they stay listed, and can be
enabled again by a PUT, which in turn disables the rest. The URL passes the gateway's rules for
notify URLs (stablegate.outbound) or is refused with 422 ``url``. Deliveries are always retried
on the gateway's schedule, whatever ``automaticRedelivery`` says (it is answered ``true``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.compat.greenfield.wire import invalid
from stablegate.errors import NotFound
from stablegate.models import AuditEntry, GreenfieldWebhook
from stablegate.outbound import DestinationError, parse_webhook_url
from stablegate.secret_box import SecretBox, new_token

# The invoice events BTCPay sends (its swagger's list, invoices only: the gateway has no
# payment requests, payouts or subscriptions).
INVOICE_CREATED = "InvoiceCreated"
INVOICE_RECEIVED_PAYMENT = "InvoiceReceivedPayment"
INVOICE_PAYMENT_SETTLED = "InvoicePaymentSettled"
INVOICE_PROCESSING = "InvoiceProcessing"
INVOICE_EXPIRED = "InvoiceExpired"
INVOICE_SETTLED = "InvoiceSettled"
INVOICE_INVALID = "InvoiceInvalid"
EVENT_TYPES = (
    INVOICE_CREATED,
    INVOICE_RECEIVED_PAYMENT,
    INVOICE_PAYMENT_SETTLED,
    INVOICE_PROCESSING,
    INVOICE_EXPIRED,
    INVOICE_SETTLED,
    INVOICE_INVALID,
)
MAX_SECRET = 256
MAX_EVENTS = 64


@dataclass(frozen=True)
class WebhookFields:
    """What a create or update body sets (None: left as it is, or the default on create)."""

    url: str | None
    enabled: bool | None
    events: list[str] | None  # [] = everything
    events_given: bool
    secret: str | None


def parse_webhook_fields(body: dict[str, Any], *, creating: bool) -> WebhookFields:
    url = body.get("url")
    if url is None and creating:
        raise invalid("url", "the webhook needs a url")
    if url is not None:
        if not isinstance(url, str):
            raise invalid("url", "a URL string is expected")
        try:
            parse_webhook_url(url)
        except DestinationError as exc:
            raise invalid("url", str(exc)) from None
    enabled = body.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise invalid("enabled", "true or false is expected")
    redelivery = body.get("automaticRedelivery")
    if redelivery is not None and not isinstance(redelivery, bool):
        raise invalid("automaticRedelivery", "true or false is expected")
    secret = body.get("secret")
    if secret is not None and (not isinstance(secret, str) or len(secret) > MAX_SECRET):
        raise invalid("secret", f"a string of at most {MAX_SECRET} characters is expected")
    events, given = _authorized_events(body.get("authorizedEvents"))
    return WebhookFields(url, enabled, events, given, secret or None)


def _authorized_events(value: object) -> tuple[list[str] | None, bool]:
    if value is None:
        return None, False
    if not isinstance(value, dict):
        raise invalid("authorizedEvents", "an object {everything, specificEvents} is expected")
    everything = value.get("everything", True)
    if not isinstance(everything, bool):
        raise invalid("authorizedEvents.everything", "true or false is expected")
    if everything:
        return [], True
    specific = value.get("specificEvents") or []
    if (
        not isinstance(specific, list)
        or len(specific) > MAX_EVENTS
        or not all(isinstance(e, str) and 0 < len(e) <= 64 for e in specific)
    ):
        raise invalid("authorizedEvents.specificEvents", "a list of event types is expected")
    # Types the gateway never sends (payouts, payment requests) are kept: they just never come.
    return list(dict.fromkeys(specific)), True


def webhook_json(webhook: GreenfieldWebhook, secret: str | None = None) -> dict[str, Any]:
    events = webhook.events or []
    data: dict[str, Any] = {
        "id": webhook.id,
        "enabled": webhook.enabled,
        "automaticRedelivery": True,
        "url": webhook.url,
        "authorizedEvents": {"everything": not events, "specificEvents": list(events)},
    }
    if secret is not None:
        data["secret"] = secret
    return data


async def _disable_others(session: AsyncSession, merchant_id: str, keep: str) -> None:
    await session.execute(
        update(GreenfieldWebhook)
        .where(
            GreenfieldWebhook.merchant_id == merchant_id,
            GreenfieldWebhook.id != keep,
            GreenfieldWebhook.enabled,
        )
        .values(enabled=False)
        .execution_options(synchronize_session=False)
    )


def _audit(clock: Clock, actor: str, action: str, webhook: GreenfieldWebhook) -> AuditEntry:
    return AuditEntry(
        at_ms=clock.now_ms(),
        actor=actor,
        action=action,
        subject=webhook.merchant_id,
        details={"webhookId": webhook.id, "url": webhook.url, "enabled": webhook.enabled},
    )


async def create_webhook(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    *,
    merchant_id: str,
    fields: WebhookFields,
    actor: str,
) -> tuple[GreenfieldWebhook, str]:
    """The new webhook and its secret (the one given, or a generated one)."""
    assert fields.url is not None
    secret = fields.secret or new_token("", 24)
    now = clock.now_ms()
    webhook = GreenfieldWebhook(
        id=new_token("gfw_", 12),
        merchant_id=merchant_id,
        url=fields.url,
        secret_enc=box.seal(secret),
        events=fields.events or None,
        enabled=True if fields.enabled is None else fields.enabled,
        created_at_ms=now,
        updated_at_ms=now,
    )
    session.add(webhook)
    await session.flush()
    if webhook.enabled:
        await _disable_others(session, merchant_id, webhook.id)
    session.add(_audit(clock, actor, "greenfield_webhook.created", webhook))
    await session.flush()
    return webhook, secret


async def find_webhook(
    session: AsyncSession, merchant_id: str, webhook_id: str, *, for_update: bool = False
) -> GreenfieldWebhook:
    statement = select(GreenfieldWebhook).where(
        GreenfieldWebhook.merchant_id == merchant_id, GreenfieldWebhook.id == webhook_id
    )
    if for_update:
        statement = statement.with_for_update()
    webhook = await session.scalar(statement)
    if webhook is None:
        raise NotFound("no such webhook in this store")
    return webhook


async def list_webhooks(session: AsyncSession, merchant_id: str) -> list[GreenfieldWebhook]:
    statement = (
        select(GreenfieldWebhook)
        .where(GreenfieldWebhook.merchant_id == merchant_id)
        .order_by(GreenfieldWebhook.created_at_ms, GreenfieldWebhook.id)
    )
    return list((await session.scalars(statement)).all())


async def update_webhook(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    *,
    merchant_id: str,
    webhook_id: str,
    fields: WebhookFields,
    actor: str,
) -> GreenfieldWebhook:
    webhook = await find_webhook(session, merchant_id, webhook_id, for_update=True)
    if fields.url is not None:
        webhook.url = fields.url
    if fields.enabled is not None:
        webhook.enabled = fields.enabled
    if fields.events_given:
        webhook.events = fields.events or None
    if fields.secret is not None:
        webhook.secret_enc = box.seal(fields.secret)
    webhook.updated_at_ms = clock.now_ms()
    await session.flush()
    if webhook.enabled:
        await _disable_others(session, merchant_id, webhook.id)
    session.add(_audit(clock, actor, "greenfield_webhook.updated", webhook))
    await session.flush()
    return webhook


async def delete_webhook(
    session: AsyncSession, clock: Clock, *, merchant_id: str, webhook_id: str, actor: str
) -> None:
    """Removed; events of its invoices not yet delivered are then skipped (``no_endpoint``)."""
    webhook = await find_webhook(session, merchant_id, webhook_id, for_update=True)
    session.add(_audit(clock, actor, "greenfield_webhook.deleted", webhook))
    await session.delete(webhook)
    await session.flush()
