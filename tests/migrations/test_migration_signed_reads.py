"""Migration 0006: keys that never chose a read policy follow the new default (signed reads once a
public key is registered); an explicit "signed" stays. On SQLite and PostgreSQL, from 0004."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from tests.conftest import POSTGRES_ADMIN_URL, unavailable

from stablegate.db.engine import make_engine
from stablegate.migrations import upgrade


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"stablegate_test_{secrets.token_hex(4)}"
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", str(exc))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        yield f"{base}/{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_keys_without_a_choice_follow_the_default(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        await upgrade(engine, "0004")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO merchants (id, name, webhook_secret_enc, late_payment, "
                    "underpay_tolerance_ppm, deposit_strategy, created_at_ms) "
                    "VALUES ('mch_1', 'Shop', 'x', 'record', 0, 'forwarder', 1)"
                )
            )
            for key_id, signed_reads in (("key_pub", False), ("key_hmac", False), ("key_on", True)):
                await connection.execute(
                    text(
                        "INSERT INTO api_keys (id, merchant_id, key_hash, key_prefix, secret_enc, "
                        "v2_enabled, signed_reads, created_at_ms) "
                        "VALUES (:id, 'mch_1', :id, 'ak_', 'x', false, :signed_reads, 1)"
                    ),
                    {"id": key_id, "signed_reads": signed_reads},
                )
            await connection.execute(
                text(
                    "INSERT INTO api_public_keys (id, api_key_id, pem, fingerprint, created_at_ms) "
                    "VALUES ('pk_1', 'key_pub', 'pem', 'fp', 1)"
                )
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            rows = dict(
                (await connection.execute(text("SELECT id, signed_reads FROM api_keys"))).all()
            )
        assert rows == {"key_pub": None, "key_hmac": None, "key_on": True}
    finally:
        await engine.dispose()
