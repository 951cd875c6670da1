"""A Core statement compiled once and run by the driver (stablegate.db.driver_statement): the
arguments it sends are what SQLAlchemy would send, and a connection that went bad is not handed
back out by the pool."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import cast

import pytest
from sqlalchemy import Table, bindparam, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from stablegate.db.driver_statement import DriverStatement, driver_connection
from stablegate.db.engine import make_engine
from stablegate.models import Order
from stablegate.models.order import OrderStatus

_ORDERS = cast(Table, Order.__table__)


def _statement() -> object:
    return select(
        bindparam("amount", type_=_ORDERS.c.amount.type),
        bindparam("status", type_=_ORDERS.c.status.type),
        bindparam("exceptions", type_=_ORDERS.c.exceptions.type),
        literal(True),
    )


def test_arguments_are_converted_as_sqlalchemy_would() -> None:
    on_postgres = DriverStatement.compile(_statement(), postgresql.asyncpg.dialect())  # type: ignore[arg-type]
    on_sqlite = DriverStatement.compile(_statement(), sqlite.aiosqlite.dialect())  # type: ignore[arg-type]
    values = {"amount": 10**30 + 7, "status": OrderStatus.PENDING, "exceptions": ["late"]}
    amount, status, exceptions, fixed = on_postgres.arguments(values)
    assert amount == Decimal(10**30 + 7) and isinstance(amount, Decimal)
    assert status == "pending" and json.loads(exceptions) == ["late"] and fixed is True
    assert "$1" in on_postgres.sql
    amount, status, exceptions, fixed = on_sqlite.arguments(values)
    assert amount == str(10**30 + 7) and status == "pending" and fixed in (True, 1)
    assert "?" in on_sqlite.sql


def test_a_value_not_given_is_refused_not_sent_as_null() -> None:
    statement = DriverStatement.compile(_statement(), sqlite.aiosqlite.dialect())  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        statement.arguments({"amount": 1, "status": OrderStatus.PENDING})
    with pytest.raises(TypeError):  # BaseUnits' own check still runs
        statement.arguments({"amount": 1.5, "status": OrderStatus.PENDING, "exceptions": []})


@pytest.fixture
async def engine(postgres_database: str) -> AsyncIterator[AsyncEngine]:
    made = make_engine(postgres_database, pool_size=1, max_overflow=0)
    yield made
    await made.dispose()


async def _pid(engine: AsyncEngine) -> int:
    async with driver_connection(engine) as connection:
        pid = await connection.fetchval("SELECT pg_backend_pid()")
    assert isinstance(pid, int)
    return pid


async def test_a_healthy_connection_goes_back_to_the_pool(engine: AsyncEngine) -> None:
    assert await _pid(engine) == await _pid(engine)


async def test_a_connection_closed_while_in_use_is_not_handed_out_again(
    engine: AsyncEngine,
) -> None:
    first = await _pid(engine)
    with pytest.raises(RuntimeError):
        async with driver_connection(engine) as connection:
            await connection.close()
            raise RuntimeError("the statement failed")
    assert await _pid(engine) != first


async def test_a_connection_cancelled_mid_statement_is_dropped(engine: AsyncEngine) -> None:
    first = await _pid(engine)

    async def slow() -> None:
        async with driver_connection(engine) as connection:
            await connection.execute("SELECT pg_sleep(5)")

    task = asyncio.ensure_future(slow())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _pid(engine) != first
