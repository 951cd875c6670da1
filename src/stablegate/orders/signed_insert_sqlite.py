"""A signed order on SQLite in one hop to a thread: the credential check, the replay claim, the
order and its first events in one transaction on a plain ``sqlite3`` connection.

Through aiosqlite each statement of that transaction (BEGIN, the epoch, the claim, the order, the
events, COMMIT) is three or four hand-offs between the event loop and aiosqlite's thread, and the
hand-offs cost more than SQLite does. Here the loop hands the whole transaction over once. The
decisions and their order are those of the PostgreSQL statement
(:mod:`stablegate.orders.signed_insert`): nothing is written unless the epoch is the cached one,
nothing but the claim for a repeated ``orderNo``, no event without its order.

One transaction at a time (SQLite has one writer anyway), on a connection of its own beside the
engine's: its waits for the write lock happen in the thread, never in the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Dialect, Table, bindparam, select
from sqlalchemy.dialects.sqlite import insert

from stablegate.auth.replay_db import claim_statement
from stablegate.db.driver_statement import DriverStatement
from stablegate.models import CredentialEpoch, Order, WebhookEvent
from stablegate.models.credential_epoch import EPOCH_ROW_ID
from stablegate.orders.insert_guard import InsertGuard, InsertOutcome, event_columns

# As the engine's own connections (stablegate.db.engine), so both see the same database.
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def _insert(table: Table, names: Sequence[str]) -> Any:
    return insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in names})


class SqliteSignedOrders:
    def __init__(self, dialect: Dialect, database: str) -> None:
        self._dialect = dialect
        self._database = database
        self._connection: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        epochs = cast(Table, CredentialEpoch.__table__)
        self._epoch = self._compile(select(epochs.c.epoch).where(epochs.c.id == EPOCH_ROW_ID))
        self._epoch_arguments = self._epoch.arguments({})
        self._claim = self._compile(claim_statement("sqlite"))
        self._orders: dict[tuple[str, ...], DriverStatement] = {}
        self._events: dict[tuple[str, ...], DriverStatement] = {}

    def _compile(self, statement: Any) -> DriverStatement:
        return DriverStatement.compile(statement, self._dialect)

    def _order_statement(self, names: tuple[str, ...]) -> DriverStatement:
        statement = self._orders.get(names)
        if statement is None:
            table = cast(Table, Order.__table__)
            insert_order = _insert(table, names).on_conflict_do_nothing(
                index_elements=[table.c.merchant_id, table.c.order_no]
            )
            statement = self._compile(insert_order.returning(table.c.id))
            self._orders[names] = statement
        return statement

    def _event_statement(self, names: tuple[str, ...]) -> DriverStatement:
        statement = self._events.get(names)
        if statement is None:
            statement = self._compile(_insert(cast(Table, WebhookEvent.__table__), names))
            self._events[names] = statement
        return statement

    async def insert(
        self,
        guard: InsertGuard,
        order_values: Mapping[str, Any],
        event_rows: Sequence[Mapping[str, Any]],
    ) -> InsertOutcome:
        order = self._order_statement(tuple(order_values))
        order_arguments = order.arguments(order_values)
        events = self._event_statement(event_columns(event_rows)) if event_rows else None
        event_arguments = events.many(event_rows) if events is not None else []
        claim_arguments = None
        if guard.claim is not None:
            claim_arguments = self._claim.arguments(
                {
                    "key": guard.claim.key,
                    "expires_at_ms": guard.claim.expires_at_ms,
                    "now_ms": guard.claim.now_ms,
                }
            )

        def write() -> InsertOutcome:
            return self._write(
                guard.epoch, claim_arguments, order.sql, order_arguments, events, event_arguments
            )

        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(None, write)

    def _write(
        self,
        epoch: int,
        claim_arguments: list[Any] | None,
        order_sql: str,
        order_arguments: list[Any],
        events: DriverStatement | None,
        event_arguments: list[list[Any]],
    ) -> InsertOutcome:
        """In the executor's thread: the one transaction."""
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            # fetchall: a statement still open would keep COMMIT from going through.
            current = connection.execute(self._epoch.sql, self._epoch_arguments).fetchall()
            current_epoch = current[0][0] if current else None
            if current_epoch != epoch:
                connection.execute("ROLLBACK")
                return InsertOutcome(epoch=current_epoch, claimed=False, order_id=None)
            claim = self._claim.sql
            if (
                claim_arguments is not None
                and not connection.execute(claim, claim_arguments).fetchall()
            ):
                connection.execute("ROLLBACK")  # a live claim: a replay
                return InsertOutcome(epoch=current_epoch, claimed=False, order_id=None)
            inserted = connection.execute(order_sql, order_arguments).fetchall()
            order_id = inserted[0][0] if inserted else None
            if order_id is not None and events is not None:
                connection.executemany(events.sql, event_arguments)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return InsertOutcome(epoch=current_epoch, claimed=True, order_id=order_id)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # Used by one thread at a time (the lock), not always the same one.
            connection = sqlite3.connect(
                self._database, timeout=30, isolation_level=None, check_same_thread=False
            )
            for pragma in _PRAGMAS:
                connection.execute(pragma)
            self._connection = connection
        return self._connection

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
