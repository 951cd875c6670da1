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

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Table,
    Update,
    bindparam,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.clock import Clock
from stablegate.errors import InvalidRequest, NotFound
from stablegate.models import (
    ApiKey,
    AuditEntry,
    GreenfieldWebhook,
    Merchant,
    WebhookDelivery,
    WebhookEvent,
)
from stablegate.models.order import NotifyFormat
from stablegate.models.webhook_event import EventStatus
from stablegate.outbound import DestinationError, parse_webhook_url
from stablegate.pagination import INT32_MAX, cursor_int, decode_cursor, encode_cursor
from stablegate.secret_box import SecretBox, SecretKeyMissing, new_token
from stablegate.web.wire import wire_json
from stablegate.webhooks import queries
from stablegate.webhooks.ordering import EVENTS, ORDERS, chunks, lock_orders, refresh
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


@dataclass(frozen=True)
class Claim:
    """One leased event, with what its attempt needs (read in the claim statement)."""

    event_id: str
    merchant_id: str
    order_id: str
    attempt: int  # 1-based number of this attempt in the current round
    lease_until_ms: int  # the lease token the worker's record step is guarded by
    created_at_ms: int
    url: str | None
    payload: dict[str, Any]
    secrets: tuple[str, ...] = field(repr=False)
    secret_error: str | None = None
    host: str = ""  # the URL's host name ("" without a usable URL): the per-host limit's key
    # The order's notification format (models.order.NotifyFormat): "signed" for the gateway's
    # webhooks; a foreign format's callback is signed with the compat credential's key, which
    # is then ``secrets``' only entry, and named by ``credential_id`` (EPay's pid).
    notify_format: str = NotifyFormat.SIGNED.value
    credential_id: str | None = None
    # Greenfield: the store's enabled webhook (``secrets`` holds its secret) and the event types
    # it subscribed to (empty: every one).
    webhook_id: str | None = None
    subscribed: tuple[str, ...] = ()


@functools.lru_cache(maxsize=4096)
def _host_of(url: str | None) -> str:
    """The host name of a stored URL (a pure function of it, so kept for the next claim)."""
    try:
        return parse_webhook_url(url)[1] if url else ""
    except DestinationError:
        return ""


def _claim_statement(dialect: str) -> Update:
    """The whole claim as one statement, built once per dialect (parameters ``now_ms``,
    ``lease_until``, ``limit``): the due rows picked from the partial index of deliverable rows
    (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), their lease taken, and what their attempts need
    returned: the event, the order's URL, the merchant's URL and stored webhook secrets."""
    events, orders = EVENTS, ORDERS
    merchants = cast(Table, Merchant.__table__)
    api_keys = cast(Table, ApiKey.__table__)
    now = bindparam("now_ms", type_=BigInteger)
    picked = events.alias("due")
    due = (
        select(picked.c.id)
        .where(
            picked.c.deliverable,
            picked.c.next_attempt_at_ms <= now,
            or_(picked.c.lease_until_ms.is_(None), picked.c.lease_until_ms < now),
        )
        .order_by(picked.c.next_attempt_at_ms, picked.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)

    # The outer row is named by a literal: SQLite's RETURNING drops table qualifiers, which
    # would leave ``id = order_id`` inside the subquery; unqualified names there resolve to the
    # subquery's own table first, so only the outer one needs its name.
    def lookup(column: ColumnElement[Any], key: str, name: str) -> Any:
        table = column.table
        outer: ColumnElement[Any] = literal_column(f"webhook_events.{key}")
        return select(column).where(table.c.id == outer).scalar_subquery().label(name)

    hooks = cast(Table, GreenfieldWebhook.__table__)

    def store_hook(column: ColumnElement[Any], name: str) -> Any:
        # The merchant's enabled Greenfield webhook (one at most; the newest if a race made two).
        return (
            select(column)
            .where(
                hooks.c.merchant_id == literal_column("webhook_events.merchant_id"),
                hooks.c.enabled,
            )
            .order_by(hooks.c.created_at_ms.desc(), hooks.c.id.desc())
            .limit(1)
            .scalar_subquery()
            .label(name)
        )

    return (
        update(events)
        .where(
            events.c.id.in_(due),
            or_(events.c.lease_until_ms.is_(None), events.c.lease_until_ms < now),
        )
        .values(lease_until_ms=bindparam("lease_until", type_=BigInteger))
        .returning(
            events.c.id,
            events.c.merchant_id,
            events.c.order_id,
            events.c.attempts,
            events.c.created_at_ms,
            events.c.next_attempt_at_ms,
            events.c.payload,
            lookup(orders.c.notify_url, "order_id", "order_url"),
            lookup(merchants.c.notify_url, "merchant_id", "merchant_url"),
            lookup(merchants.c.webhook_secret_enc, "merchant_id", "secret_enc"),
            lookup(merchants.c.webhook_secret_prev_enc, "merchant_id", "prev_enc"),
            lookup(merchants.c.webhook_secret_prev_until_ms, "merchant_id", "prev_until_ms"),
            lookup(orders.c.notify_format, "order_id", "notify_format"),
            lookup(orders.c.compat_key_id, "order_id", "credential_id"),
            # Nested, not joined: each level names one table (see lookup()).
            select(api_keys.c.secret_enc)
            .where(
                api_keys.c.id
                == select(orders.c.compat_key_id)
                .where(orders.c.id == literal_column("webhook_events.order_id"))
                .scalar_subquery()
            )
            .scalar_subquery()
            .label("credential_enc"),
            store_hook(hooks.c.id, "hook_id"),
            store_hook(hooks.c.url, "hook_url"),
            store_hook(hooks.c.secret_enc, "hook_secret_enc"),
            store_hook(hooks.c.events, "hook_events"),
        )
    )


_CLAIM_STATEMENTS: dict[str, Update] = {}


async def claim_due(
    session: AsyncSession,
    secrets: WebhookSecretCache,
    *,
    now_ms: int,
    limit: int,
    lease_ms: int,
) -> list[Claim]:
    """Lease up to ``limit`` due events until ``now_ms + lease_ms``, in one statement.

    Due: ``deliverable`` (pending, and no earlier event of the same order still ``pending`` with
    fewer than ``ORDER_RELEASE_ATTEMPTS`` attempts: :mod:`stablegate.webhooks.ordering` keeps
    the flag), ``next_attempt_at`` passed, lease free; read from the partial index of
    deliverable rows, whatever the planner's statistics say. PostgreSQL picks rows ``FOR UPDATE
    SKIP LOCKED``; on both backends the UPDATE only takes rows whose lease is still free, so two
    workers never hold one row. It names the rows by id and lease only: a ``status`` term let a
    planner that thought nothing was pending scan every pending row through
    ``ix_webhook_events_status``. The statement is built once per dialect and its SQL compiled
    once (PostgreSQL also prepares it once per connection); secrets are opened through
    ``secrets``, which keeps them briefly by ciphertext.
    """
    dialect = (await session.connection()).dialect.name
    statement = _CLAIM_STATEMENTS.get(dialect)
    if statement is None:
        statement = _CLAIM_STATEMENTS[dialect] = _claim_statement(dialect)
    lease_until = now_ms + lease_ms
    rows = list(
        (
            await session.execute(
                statement, {"now_ms": now_ms, "lease_until": lease_until, "limit": limit}
            )
        ).all()
    )
    rows.sort(key=lambda row: (row.next_attempt_at_ms, row.id))  # RETURNING has no order
    keys: dict[tuple[str, str | None, int | None], tuple[tuple[str, ...], str | None]] = {}
    claims: list[Claim] = []
    for row in rows:
        notify_format = row.notify_format or NotifyFormat.SIGNED
        if notify_format == NotifyFormat.SIGNED:
            key = (row.secret_enc, row.prev_enc, row.prev_until_ms)
        elif notify_format == NotifyFormat.GREENFIELD:  # signed with the store's webhook
            key = (row.hook_secret_enc or "", None, None)
        else:  # a foreign callback is signed with the credential that made the order
            key = (row.credential_enc or "", None, None)
        if key not in keys:
            try:
                if not key[0]:
                    raise SecretKeyMissing("the order's compatibility credential is gone")
                keys[key] = (tuple(webhook_secrets(*key, secrets, now_ms)), None)
            except SecretKeyMissing as exc:  # that merchant's attempts fail; others go on
                keys[key] = ((), str(exc))
        url = row.order_url or row.merchant_url or None
        if notify_format == NotifyFormat.GREENFIELD:
            url = row.hook_url or None  # the store's Greenfield webhook, never another URL
        elif notify_format != NotifyFormat.SIGNED:
            url = row.order_url or None  # the panel's notify_url, never the merchant's webhook
        claims.append(
            Claim(
                event_id=row.id,
                merchant_id=row.merchant_id,
                order_id=row.order_id,
                attempt=row.attempts + 1,
                lease_until_ms=lease_until,
                created_at_ms=row.created_at_ms,
                url=url,
                payload=row.payload,
                secrets=keys[key][0],
                secret_error=keys[key][1],
                host=_host_of(url),
                notify_format=notify_format,
                credential_id=row.credential_id,
                webhook_id=row.hook_id,
                subscribed=tuple(row.hook_events or ()),
            )
        )
    return claims


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
