"""A signed order on PostgreSQL in one statement: the credential check, the replay claim, the
order and its first events, in a single round trip with no BEGIN or COMMIT.

A signed createQrOrder used to be six round trips (BEGIN, the credential epoch, the replay claim,
the order, its event, COMMIT), each costing the API process more CPU than the SQL itself.
PostgreSQL runs one statement atomically, data-modifying CTEs included, so one statement can
make the same decisions in the same order::

    WITH epoch AS (SELECT epoch FROM credential_epoch WHERE id = 1),
         claim AS (INSERT INTO replay_keys ... WHERE (SELECT epoch FROM epoch) = :epoch
                   ON CONFLICT (key) DO UPDATE ... WHERE expired RETURNING key),
         new_order AS (INSERT INTO orders ... WHERE EXISTS (SELECT FROM claim)
                       ON CONFLICT (merchant_id, order_no) DO NOTHING RETURNING id),
         first_events AS (INSERT INTO webhook_events ... SELECT ... FROM new_order)
    SELECT (SELECT epoch FROM epoch), EXISTS (SELECT FROM claim), (SELECT id FROM new_order)

Nothing is written unless the credentials the signature was checked with are still current (the
epoch the process cached them under), nothing but the claim when the merchant already has the
``orderNo`` (as in a transaction, a repeat keeps its claim), and no event without its order.
Without a database replay claim (Redis or the process's memory took it), ``claim`` is left out
and the epoch alone guards the order.

The statement is compiled once per shape and run on asyncpg's own connection from the engine's
pool (:mod:`stablegate.db.driver_statement`): SQLAlchemy's session, connection and execution
context cost the API process more than the statement does. SQLite has no data-modifying CTEs:
:mod:`stablegate.orders.signed_insert_sqlite` makes the same decisions in one transaction, in one
hop to a thread. :func:`signed_orders_for` picks the writer for an engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, exists, literal, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from stablegate.db.driver_statement import DriverStatements, driver_connection
from stablegate.models import CredentialEpoch, Order, ReplayKey, WebhookEvent
from stablegate.models.credential_epoch import EPOCH_ROW_ID
from stablegate.orders.insert_guard import (
    InsertGuard,
    InsertOutcome,
    SignedOrders,
    event_columns,
)
from stablegate.orders.signed_insert_sqlite import SqliteSignedOrders


def _columns(table: Table, names: Sequence[str], prefix: str) -> list[Any]:
    return [bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names]


def signed_statement(
    order_names: tuple[str, ...], event_names: tuple[str, ...], events: int, claims: bool
) -> Select[Any]:
    """The one statement for a shape (which order columns are set, how many first events,
    whether a claim is taken)."""
    orders = cast(Table, Order.__table__)
    epoch_table = cast(Table, CredentialEpoch.__table__)
    epoch = select(epoch_table.c.epoch).where(epoch_table.c.id == EPOCH_ROW_ID).cte("current_epoch")
    current = select(epoch.c.epoch).scalar_subquery()
    epoch_ok = current == bindparam("epoch", type_=epoch_table.c.epoch.type)
    if claims:
        replay = cast(Table, ReplayKey.__table__)
        taken = insert(replay).from_select(
            ["key", "expires_at_ms"],
            select(
                bindparam("claim_key", type_=replay.c.key.type),
                bindparam("claim_expires_at_ms", type_=replay.c.expires_at_ms.type),
            ).where(epoch_ok),
        )
        claim = (
            taken.on_conflict_do_update(
                index_elements=[replay.c.key],
                set_={"expires_at_ms": taken.excluded.expires_at_ms},
                where=replay.c.expires_at_ms
                <= bindparam("claim_now_ms", type_=replay.c.expires_at_ms.type),
            )
            .returning(replay.c.key)
            .cte("claim")
        )
        go: ColumnElement[bool] = exists(select(claim.c.key))
        claimed: ColumnElement[bool] = go
    else:
        go = epoch_ok
        claimed = literal(True)
    new_order = (
        insert(orders)
        .from_select(list(order_names), select(*_columns(orders, order_names, "o_")).where(go))
        .on_conflict_do_nothing(index_elements=[orders.c.merchant_id, orders.c.order_no])
        .returning(orders.c.id)
        .cte("new_order")
    )
    statement = select(
        current.label("epoch"),
        claimed.label("claimed"),
        select(new_order.c.id).scalar_subquery().label("order_id"),
    )
    if events:
        table = cast(Table, WebhookEvent.__table__)
        rows = [
            select(*_columns(table, event_names, f"e{index}_")).select_from(new_order)
            for index in range(events)
        ]
        source = rows[0] if events == 1 else union_all(*rows)
        first_events = insert(table).from_select(list(event_names), source).cte("first_events")
        # Not read by the outer SELECT: add_cte makes it part of the statement all the same.
        statement = statement.add_cte(first_events)
    return statement


class PostgresSignedOrders:
    """The one statement, compiled once per shape, on asyncpg's connection from the pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._statements = DriverStatements(engine.dialect)

    async def insert(
        self,
        guard: InsertGuard,
        order_values: Mapping[str, Any],
        event_rows: Sequence[Mapping[str, Any]],
    ) -> InsertOutcome:
        """``order_values`` and each of ``event_rows`` are column -> value."""
        event_names = event_columns(event_rows)
        params: dict[str, Any] = {"epoch": guard.epoch}
        if guard.claim is not None:
            params["claim_key"] = guard.claim.key
            params["claim_expires_at_ms"] = guard.claim.expires_at_ms
            params["claim_now_ms"] = guard.claim.now_ms
        params.update({f"o_{name}": value for name, value in order_values.items()})
        for index, row in enumerate(event_rows):
            params.update({f"e{index}_{name}": value for name, value in row.items()})
        shape = (tuple(order_values), event_names, len(event_rows), guard.claim is not None)
        statement = self._statements.get(shape, lambda: signed_statement(*shape))
        async with driver_connection(self._engine) as connection:
            row = await connection.fetchrow(statement.sql, *statement.arguments(params))
        return InsertOutcome(
            epoch=row["epoch"], claimed=bool(row["claimed"]), order_id=row["order_id"]
        )

    async def close(self) -> None:
        """Nothing of its own: its connections are the engine's."""


def signed_orders_for(engine: AsyncEngine) -> SignedOrders | None:
    """The writer of signed orders for ``engine``'s database; None where there is none (an
    in-memory SQLite database, which another connection would not see)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresSignedOrders(engine)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return SqliteSignedOrders(engine.dialect, url.database)
    return None
