"""Shared fixtures: one API suite runs on SQLite and PostgreSQL with the migrations applied."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.chain_files import write_chains_file
from tests.service_urls import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,  # noqa: F401 (re-exported: tests import it from here)
    unavailable,
)
from tests.support import NOW_MS, PAYOUT, TEST_USDT, TEST_USDT18, MerchantKeys, Signer

import stablegate.models  # noqa: F401 (every table in Base.metadata)
from stablegate.api.app import create_app
from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import Settings
from stablegate.db.base import Base
from stablegate.db.engine import make_engine, session_scope
from stablegate.merchants.service import create_merchant
from stablegate.migrations import upgrade

pytest_plugins = ["tests.chain_fixtures"]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once, dropped at the end."""
    name = f"stablegate_test_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        # Tests need no crash durability: commits need not wait for the WAL to reach the disk.
        asyncio.run(admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", str(exc))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"

    async def migrate() -> None:
        engine = make_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# Children before parents, so plain DELETEs never trip a foreign key. DELETE, not TRUNCATE:
# TRUNCATE swaps every table's files and costs ~35 ms per test even on empty tables, DELETE of
# the few rows a test writes ~3 ms. The credential epoch's one row stays (migration 0014 made it).
TABLES = tuple(
    table.name
    for table in reversed(Base.metadata.sorted_tables)
    if table.name != "credential_epoch"
)


async def empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in TABLES:
            await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session: tests start from a copy of it
    (see :func:`copy_migrated_sqlite`) instead of running every migration again."""
    path = tmp_path_factory.mktemp("migrated") / "gateway.db"

    async def migrate() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    return path


def copy_migrated_sqlite(migrated: Path, database_url: str) -> bool:
    """Puts the migrated database where ``database_url`` points, unless a file is already
    there; False when that URL is not a SQLite file, so the caller migrates it itself."""
    target = make_url(database_url).database
    if not database_url.startswith("sqlite") or not target or Path(target).exists():
        return False
    shutil.copyfile(migrated, target)
    return True


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def chains_file(tmp_path: Path) -> Path:
    tokens = [("USDT", TEST_USDT, 6), ("USDT18", TEST_USDT18, 18)]
    return write_chains_file(tmp_path / "chains.toml", tokens=tokens)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, chains_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        chains_file=chains_file,
        secret_key=Fernet.generate_key().decode(),
        public_url="https://pay.example.com",
        metrics_token="metrics-token",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS)


@pytest_asyncio.fixture
async def app(
    settings: Settings, clock: FakeClock, migrated_sqlite: Path
) -> AsyncIterator[FastAPI]:
    copied = copy_migrated_sqlite(migrated_sqlite, settings.effective_database_url)
    application = create_app(settings, clock=clock, migrate=False)
    ctx: GatewayContext = application.state.gateway
    if not settings.is_embedded:
        await empty_tables(ctx.engine)
    elif not copied:
        await upgrade(ctx.engine)
    yield application
    await ctx.engine.dispose()
    if ctx.redis is not None:
        await ctx.redis.aclose()


@pytest.fixture
def gateway(app: FastAPI) -> GatewayContext:
    ctx: GatewayContext = app.state.gateway
    return ctx


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://pay.example.com") as c:
        yield c


@pytest_asyncio.fixture
async def merchant(gateway: GatewayContext, clock: FakeClock) -> MerchantKeys:
    async with session_scope(gateway.sessions) as session:
        created = await create_merchant(
            session,
            gateway.secret_box,
            clock,
            name="Test Shop",
            payout_address=PAYOUT,
            chain_ids=[31337, 56],
        )
    return MerchantKeys(
        created.merchant_id, created.api_key, created.secret_key, created.webhook_secret
    )


@pytest.fixture
def signer(merchant: MerchantKeys, clock: FakeClock) -> Signer:
    return Signer(merchant, clock)
