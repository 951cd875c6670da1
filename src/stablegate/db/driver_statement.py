"""A Core statement compiled once and run on the database driver's own connection.

For the one path where SQLAlchemy's per-execution work costs more than the SQL (a signed order,
:mod:`stablegate.orders.signed_insert`): the statement is compiled once per shape, its bind
parameters converted by the same type processors SQLAlchemy would use, and the driver (asyncpg,
or a plain ``sqlite3`` connection) runs it. Everything else goes through the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn


@dataclass(frozen=True)
class DriverStatement:
    """``sql`` in the driver's own parameter style, and how to turn named values into its
    positional arguments."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    # Values the statement carries itself (a literal compared against, ``literal(True)``).
    fixed: Mapping[str, Any]

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        names = tuple(compiled.positiontup or ())
        processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        )
        fixed = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not bind.required and name in names
        }
        return cls(compiled.string, names, processors, fixed)

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional arguments; a name neither given nor fixed is a KeyError (never a
        silent NULL)."""
        arguments = []
        for name, process in zip(self.names, self.processors, strict=True):
            value = values[name] if name in values else self.fixed[name]
            arguments.append(value if process is None else process(value))
        return arguments

    def many(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        return [self.arguments(row) for row in rows]


class DriverStatements:
    """Statements compiled once per shape (which columns, how many rows...) for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled: dict[Hashable, DriverStatement] = {}

    def get(self, shape: Hashable, build: Callable[[], ClauseElement]) -> DriverStatement:
        """The statement of ``shape``, built and compiled by ``build`` the first time."""
        compiled = self._compiled.get(shape)
        if compiled is None:
            compiled = DriverStatement.compile(build(), self._dialect)
            self._compiled[shape] = compiled
        return compiled


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A connection of ``engine``'s pool, as the driver's own object (asyncpg's ``Connection``),
    outside any transaction: each statement on it commits by itself.

    Checked out and in through the pool, so its idle-connection ping (stablegate.db.engine)
    and its size hold; a connection the driver found closed is dropped from the pool."""
    pooled = await engine.raw_connection()
    driver = pooled.driver_connection
    try:
        yield driver
    except BaseException as exc:
        # Closed, or cancelled mid-statement (its state unknown): not handed to anyone else.
        if driver is None or driver.is_closed() or isinstance(exc, asyncio.CancelledError):
            pooled.invalidate()
        raise
    finally:
        # Back to the pool, whose reset on return has nothing to roll back.
        await greenlet_spawn(pooled.close)
