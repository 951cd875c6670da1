"""Webhook rules for the API, the CLI and the worker: statuses, secrets, claims, resend, log.

Event status (``webhook_events.status``)::

    pending      waiting for its next attempt (or for the event before it, same order)
    delivered    a 2xx came back within 10 s
    failed       no 2xx within 72 h of the first attempt; kept, resendable
    no_endpoint  neither the order nor the merchant has a notifyUrl; nothing was sent. Kept,
                 resendable once a URL is set (a merchant without a URL polls the API, and
                 should not get a flood of stale events the moment a URL appears)

Delivery outcome (``webhook_deliveries.outcome``, one row per attempt)::

    success   2xx                         failure   any other HTTP status (3xx included)
    error     no HTTP response: refused by the SSRF guard, DNS, connect, TLS, timeout
    skipped   no notifyUrl (attempt 0: nothing was sent)

Resending puts an event back to ``pending`` with a fresh schedule (attempt numbers restart at
1); a pending event is just made due now. Services flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.errors import InvalidRequest, NotFound
from stablegate.models import (
    AuditEntry,
    Merchant,
    WebhookDelivery,
    WebhookEvent,
)
from stablegate.models.webhook_event import EventStatus
from stablegate.pagination import INT32_MAX, cursor_int, decode_cursor, encode_cursor
from stablegate.secret_box import SecretBox, new_token
from stablegate.web.wire import wire_json
from stablegate.webhooks import queries
from stablegate.webhooks.ordering import chunks, lock_orders, refresh
from stablegate.webhooks.schemas import Delivery, DeliveryPage
from stablegate.webhooks.secret_cache import WebhookSecretCache
from stablegate.webhooks.state import (
    RESENDABLE_IN_BULK,
    EventTrigger,
    common_target,
    transition,
)

# After a rotation the previous webhook secret still signs (second V2 value) this long.
PREVIOUS_SECRET_GRACE_MS = 24 * 3_600_000


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    SKIPPED = "skipped"


def webhook_secrets(
    current_enc: str,
    previous_enc: str | None,
    previous_until_ms: int | None,
    opener: WebhookSecretCache,
    now_ms: int,
) -> list[str]:
    """The secrets to sign with: the current one, then the previous one during its grace."""
    secrets = [opener.open(current_enc)]
    if previous_enc is not None and previous_until_ms is not None and now_ms < previous_until_ms:
        secrets.append(opener.open(previous_enc))
    return secrets


@dataclass(frozen=True)
class RotatedSecret:
    merchant_id: str
    webhook_secret: str = field(repr=False)
    previous_valid_until_ms: int


async def rotate_webhook_secret(
    session: AsyncSession, box: SecretBox, clock: Clock, *, merchant_id: str, actor: str = "cli"
) -> RotatedSecret:
    """Make a new webhook secret; the current one keeps signing (second V2 value) for 24 h.

    Rotating again within those 24 h drops the oldest secret: only two are ever honoured.
    """
    merchant = await session.scalar(
        select(Merchant).where(Merchant.id == merchant_id).with_for_update()
    )
    if merchant is None:
        raise NotFound(f"merchant {merchant_id} not found")
    now = clock.now_ms()
    secret = new_token("whsec_", 24)
    merchant.webhook_secret_prev_enc = merchant.webhook_secret_enc
    merchant.webhook_secret_prev_until_ms = now + PREVIOUS_SECRET_GRACE_MS
    merchant.webhook_secret_enc = box.seal(secret)
    session.add(
        AuditEntry(
            at_ms=now,
            actor=actor,
            action="webhook_secret.rotated",
            subject=merchant_id,
            details={"previousValidUntil": now + PREVIOUS_SECRET_GRACE_MS},
        )
    )
    await session.flush()
    return RotatedSecret(merchant_id, secret, now + PREVIOUS_SECRET_GRACE_MS)


async def resend(
    session: AsyncSession,
    clock: Clock,
    *,
    merchant_id: str | None,
    event_id: str | None = None,
    failed: bool = False,
    actor: str,
) -> int:
    """Redeliver one event (``event_id``) or all of a merchant's failed / no_endpoint events.

    ``merchant_id`` None (operator CLI) may resend any one event. Returns how many events were
    put back in the queue. Unknown events (or another merchant's) are 404 ``not_found``.
    """
    if (event_id is None) == (not failed):
        raise InvalidRequest("give either eventId or failed=true", code="invalid_request")
    now = clock.now_ms()
    details: dict[str, Any]
    if event_id is not None:
        # The order's lock first, then its event (see ordering.py); a pending event stays as
        # it is in the order's queue, a resent one may now hold the events after it.
        the_event = queries.readable_events(merchant_id).where(WebhookEvent.id == event_id)
        order_of = the_event.with_only_columns(WebhookEvent.order_id)
        await lock_orders(session, await session.scalars(order_of))
        event = await session.scalar(the_event.with_for_update())
        if event is None:
            raise NotFound("webhook event not found")
        if event.status == EventStatus.PENDING:
            event.next_attempt_at_ms = min(event.next_attempt_at_ms, now)
        else:
            event.status = transition(event.status, EventTrigger.RESEND)
            event.attempts = 0
            event.next_attempt_at_ms = now
            event.lease_until_ms = None
            await session.flush()
            await refresh(session, [event.order_id])
        subject, count, details = event.merchant_id, 1, {"eventId": event_id, "count": 1}
    else:
        if merchant_id is None:
            raise InvalidRequest("resending all failed events needs a merchant")
        resendable = queries.resendable_events(merchant_id)
        # Lock the orders first, then touch only their events (an event failing meanwhile
        # in another order is left for the next resend).
        order_ids = list(
            await session.scalars(select(WebhookEvent.order_id).where(resendable).distinct())
        )
        await lock_orders(session, order_ids)
        count = 0
        for chunk in chunks(order_ids):
            result = await session.execute(
                update(WebhookEvent)
                .where(resendable, WebhookEvent.order_id.in_(chunk))
                .values(
                    status=common_target(RESENDABLE_IN_BULK, EventTrigger.RESEND),
                    attempts=0,
                    next_attempt_at_ms=now,
                    lease_until_ms=None,
                )
                .execution_options(synchronize_session=False)
            )
            assert isinstance(result, CursorResult)
            count += int(result.rowcount)
        await refresh(session, order_ids)
        subject = merchant_id
        details = {"failed": True, "count": count}
    session.add(
        AuditEntry(
            at_ms=now, actor=actor, action="webhook.resend", subject=subject, details=details
        )
    )
    await session.flush()
    return count


def event_view(event: WebhookEvent) -> dict[str, Any]:
    return {
        "eventId": event.id,
        "orderId": event.order_id,
        "sequence": event.sequence,
        "type": event.type,
        "status": event.status,
        "attempts": event.attempts,
        "nextAttemptTime": event.next_attempt_at_ms
        if event.status == EventStatus.PENDING
        else None,
        "createTime": event.created_at_ms,
    }


async def list_events(
    session: AsyncSession,
    *,
    merchant_id: str | None,
    status: str | None,
    order_id: str | None,
    limit: int,
) -> list[WebhookEvent]:
    """Newest events first (the operator's view; the merchant's is the delivery log)."""
    query = queries.readable_events(merchant_id)
    if status is not None:
        if status not in set(EventStatus):
            raise InvalidRequest(f"unknown status {status!r}", code="invalid_status")
        query = query.where(WebhookEvent.status == status)
    if order_id is not None:
        query = query.where(WebhookEvent.order_id == order_id)
    query = query.order_by(WebhookEvent.created_at_ms.desc(), WebhookEvent.sequence.desc())
    return list((await session.scalars(query.limit(limit))).all())


def delivery_out(delivery: WebhookDelivery, event: WebhookEvent) -> Delivery:
    return Delivery(
        deliveryId=str(delivery.id),
        eventId=delivery.event_id,
        orderId=event.order_id,
        type=event.type,
        sequence=event.sequence,
        eventStatus=event.status,
        attempt=delivery.attempt,
        url=delivery.url,
        outcome=delivery.outcome,
        responseStatus=delivery.response_status,
        responseBody=delivery.response_body,
        error=delivery.error,
        latencyMs=delivery.latency_ms,
        attemptTime=delivery.attempted_at_ms,
    )


def _encode_cursor(delivery_id: int) -> str:
    return encode_cursor([delivery_id])


def _decode_cursor(cursor: str) -> int:
    (delivery_id,) = decode_cursor(cursor, 1)
    return cursor_int(delivery_id, low=1, high=INT32_MAX)  # an INTEGER column


async def deliveries_page(
    session: AsyncSession,
    *,
    merchant_id: str | None,
    order_id: str | None = None,
    event_id: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> DeliveryPage:
    """The delivery log, newest attempt first, keyset-paginated on the delivery id."""
    query = queries.readable_deliveries(merchant_id)
    if order_id is not None:
        query = query.where(WebhookEvent.order_id == order_id)
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == event_id)
    if cursor is not None:
        query = query.where(WebhookDelivery.id < _decode_cursor(cursor))
    query = query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).all())
    next_cursor = _encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return DeliveryPage(items=[delivery_out(d, e) for d, e in rows[:limit]], nextCursor=next_cursor)


async def list_deliveries(
    session: AsyncSession,
    *,
    merchant_id: str | None,
    order_id: str | None = None,
    event_id: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """:func:`deliveries_page` as JSON objects (the CLI's rows)."""
    page = await deliveries_page(
        session,
        merchant_id=merchant_id,
        order_id=order_id,
        event_id=event_id,
        limit=limit,
        cursor=cursor,
    )
    return [wire_json(item) for item in page.items], page.next_cursor
