"""The migrations create exactly what the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from stablegate.db.base import Base
from stablegate.db.engine import make_engine
from stablegate.db.migrate import current_revision, upgrade


async def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # idempotent: a second run changes nothing

        def diff(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
        assert await current_revision(engine) is not None
    finally:
        await engine.dispose()
