"""The worker's claim: due webhook events leased in one statement, with what their attempts need.

The statement is built once per dialect (:func:`claim_due`); the claim is one short transaction
of the worker's, on a plain Core connection (or a session: both run it the same way).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
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

from stablegate.models import ApiKey, GreenfieldWebhook, Merchant
from stablegate.models.order import NotifyFormat
from stablegate.outbound import DestinationError, parse_webhook_url
from stablegate.secret_box import SecretKeyMissing
from stablegate.webhooks.ordering import EVENTS, ORDERS, Executor, dialect_of
from stablegate.webhooks.secret_cache import WebhookSecretCache
from stablegate.webhooks.service import webhook_secrets


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
    session: Executor,
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
    dialect = dialect_of(session)
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
