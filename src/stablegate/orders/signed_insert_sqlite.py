"""A signed order on SQLite in one hop to a thread: the credential check, the replay claim, the
order and its first events in one transaction on a plain ``sqlite3`` connection.

Through aiosqlite each statement of that transaction (BEGIN, the epoch, the claim, the order, the
events, COMMIT) is three or four hand-offs between the event loop and aiosqlite's thread, and the
hand-offs cost more than SQLite does. Here the loop hands the whole transaction over once. The
decisions and their order are those of the PostgreSQL statement
(:mod:`stablegate.orders.signed_insert`): nothing is written unless the epoch is the cached one,
nothing but the claim for a repeated ``orderNo``, no event without its order.

Orders that arrive while a transaction is being written wait and go together into the next one
(group commit): each in a savepoint of its own, so one order's refusal or failure leaves the
others as they would be alone, and each is answered only once its transaction has committed.
The epoch is read once per transaction: holding the write lock, nothing can change it meanwhile.
One transaction at a time (SQLite has one writer anyway), on a connection of its own beside the
engine's: its waits for the write lock happen in the thread, never in the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Dialect, Table, bindparam, select
from sqlalchemy.dialects.sqlite import insert

from stablegate.auth.replay_db import claim_statement
from stablegate.db.driver_statement import DriverStatement, DriverStatements
from stablegate.models import CredentialEpoch, Order, WebhookEvent
from stablegate.models.credential_epoch import EPOCH_ROW_ID
from stablegate.orders.direct_insert import insert_order_statement
from stablegate.orders.insert_guard import InsertGuard, InsertOutcome, event_columns

# As the engine's own connections (stablegate.db.engine), so both see the same database.
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


_ORDERS = cast(Table, Order.__table__)
_EVENTS = cast(Table, WebhookEvent.__table__)


def _bound(table: Table, names: Sequence[str]) -> dict[str, Any]:
    """A VALUES clause binding each named column to a parameter of that name and type."""
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


# Orders written in one transaction at most: bounds how long the first of them waits.
MAX_BATCH = 64


@dataclass(frozen=True)
class _Write:
    """One order's statements, their arguments already converted, and where its answer goes."""

    epoch: int
    claim_arguments: list[Any] | None
    order_sql: str
    order_arguments: list[Any]
    events: DriverStatement | None
    event_arguments: list[list[Any]]
    answer: asyncio.Future[InsertOutcome]


class SqliteSignedOrders:
    def __init__(self, dialect: Dialect, database: str) -> None:
        self._database = database
        self._connection: sqlite3.Connection | None = None
        self._waiting: list[_Write] = []
        self._writer: asyncio.Task[None] | None = None
        epochs = cast(Table, CredentialEpoch.__table__)
        self._epoch = DriverStatement.compile(
            select(epochs.c.epoch).where(epochs.c.id == EPOCH_ROW_ID), dialect
        )
        self._epoch_arguments = self._epoch.arguments({})
        self._claim = DriverStatement.compile(claim_statement("sqlite"), dialect)
        self._statements = DriverStatements(dialect)

    def _order_statement(self, names: tuple[str, ...]) -> DriverStatement:
        def build() -> Any:
            return insert_order_statement("sqlite").values(_bound(_ORDERS, names))

        return self._statements.get(("order", names), build)

    def _event_statement(self, names: tuple[str, ...]) -> DriverStatement:
        def build() -> Any:
            return insert(_EVENTS).values(_bound(_EVENTS, names))

        return self._statements.get(("events", names), build)

    async def insert(
        self,
        guard: InsertGuard,
        order_values: Mapping[str, Any],
        event_rows: Sequence[Mapping[str, Any]],
    ) -> InsertOutcome:
        order = self._order_statement(tuple(order_values))
        events = self._event_statement(event_columns(event_rows)) if event_rows else None
        claim_arguments = None
        if guard.claim is not None:
            claim_arguments = self._claim.arguments(
                {
                    "key": guard.claim.key,
                    "expires_at_ms": guard.claim.expires_at_ms,
                    "now_ms": guard.claim.now_ms,
                }
            )
        loop = asyncio.get_running_loop()
        write = _Write(
            epoch=guard.epoch,
            claim_arguments=claim_arguments,
            order_sql=order.sql,
            order_arguments=order.arguments(order_values),
            events=events,
            event_arguments=events.many(event_rows) if events is not None else [],
            answer=loop.create_future(),
        )
        self._waiting.append(write)
        if self._writer is None:
            self._writer = loop.create_task(self._write_waiting())
        # Shielded: a request given up on does not cancel the others' transaction.
        return await asyncio.shield(write.answer)

    async def _write_waiting(self) -> None:
        """Write what is waiting, a transaction at a time, until nothing is."""
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                try:
                    outcomes = await loop.run_in_executor(None, self._write, batch)
                except Exception as exc:  # the transaction failed: so did each order
                    for write in batch:
                        if not write.answer.done():
                            write.answer.set_exception(exc)
                    continue
                except BaseException:
                    # Cancelled (the loop is shutting down): nobody is left to answer.
                    for write in batch + self._waiting:
                        write.answer.cancel()
                    self._waiting.clear()
                    raise
                for write, outcome in zip(batch, outcomes, strict=True):
                    if write.answer.done():
                        continue
                    if isinstance(outcome, BaseException):
                        write.answer.set_exception(outcome)
                    else:
                        write.answer.set_result(outcome)
        finally:
            self._writer = None

    def _write(self, batch: list[_Write]) -> list[InsertOutcome | Exception]:
        """In the executor's thread: one transaction for the batch, a savepoint per order."""
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            # fetchall: a statement still open would keep COMMIT from going through.
            current = connection.execute(self._epoch.sql, self._epoch_arguments).fetchall()
            epoch = current[0][0] if current else None
            outcomes = [self._write_one(connection, epoch, write) for write in batch]
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return outcomes

    def _write_one(
        self, connection: sqlite3.Connection, epoch: int | None, write: _Write
    ) -> InsertOutcome | Exception:
        if epoch != write.epoch:
            return InsertOutcome(epoch=epoch, claimed=False, order_id=None)
        connection.execute("SAVEPOINT signed_order")
        try:
            taken = (
                write.claim_arguments is None
                or connection.execute(self._claim.sql, write.claim_arguments).fetchall()
            )
            order_id = None
            if taken:  # else a live claim: a replay, nothing written
                inserted = connection.execute(write.order_sql, write.order_arguments).fetchall()
                order_id = inserted[0][0] if inserted else None
                if order_id is not None and write.events is not None:
                    connection.executemany(write.events.sql, write.event_arguments)
        except sqlite3.DatabaseError as exc:
            # This order only (a constraint it broke): the others go on.
            connection.execute("ROLLBACK TO signed_order")
            connection.execute("RELEASE signed_order")
            return exc
        connection.execute("RELEASE signed_order")
        return InsertOutcome(epoch=epoch, claimed=bool(taken), order_id=order_id)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # Used by one thread at a time (one transaction at a time), not always the same one.
            connection = sqlite3.connect(
                self._database, timeout=30, isolation_level=None, check_same_thread=False
            )
            for pragma in _PRAGMAS:
                connection.execute(pragma)
            self._connection = connection
        return self._connection

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        if self._connection is not None:
            self._connection.close()
            self._connection = None
