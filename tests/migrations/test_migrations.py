"""The migrations create exactly what the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support import MerchantKeys
from tests.webhooks.webhook_support import create_orders, events_by_id, rule_flags

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.db.base import Base
from stablegate.db.engine import make_engine, session_scope
from stablegate.migrations import alembic_config, current_revision, upgrade
from stablegate.models import Merchant, WebhookDelivery, WebhookEvent


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


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


# (status, attempts) of each order's four events, oldest first; 7 = ORDER_RELEASE_ATTEMPTS.
BACKFILL_CASES = (
    (("pending", 0), ("pending", 0), ("pending", 0), ("pending", 0)),
    (("delivered", 1), ("pending", 3), ("pending", 0), ("pending", 0)),
    (("pending", 7), ("pending", 2), ("pending", 0), ("pending", 9)),
    (("failed", 25), ("no_endpoint", 0), ("pending", 8), ("pending", 0)),
    (("pending", 7), ("pending", 8), ("delivered", 1), ("pending", 7)),
    (("delivered", 1), ("delivered", 1), ("delivered", 1), ("delivered", 1)),
)


async def test_0005_backfills_the_deliverable_flag_by_the_ordering_rule(
    gateway: GatewayContext, clock: FakeClock, merchant: MerchantKeys
) -> None:
    orders = await create_orders(gateway, clock, merchant.merchant_id, 6, events_per_order=4)
    async with session_scope(gateway.sessions) as session:
        for ids, case in zip(orders, BACKFILL_CASES, strict=True):
            for event_id, (status, attempts) in zip(ids, case, strict=True):
                await session.execute(
                    update(WebhookEvent)
                    .where(WebhookEvent.id == event_id)
                    .values(status=status, attempts=attempts)
                )
                # Attempt rows point at the events, as on a running gateway.
                session.add(
                    WebhookDelivery(
                        event_id=event_id,
                        merchant_id=merchant.merchant_id,
                        attempt=max(attempts, 1),
                        url="https://shop.example/hook",
                        outcome="failure",
                        latency_ms=1,
                        attempted_at_ms=clock.now_ms(),
                    )
                )
    try:
        await _downgrade(gateway.engine, "0004")  # drops the column; upgrading fills it again
    finally:
        await upgrade(gateway.engine)
    events = list((await events_by_id(gateway)).values())
    flags = {e.id: e.deliverable for e in events}
    assert flags == rule_flags(events)
    expected = [
        [True, False, False, False],
        [False, True, False, False],
        [True, True, False, False],
    ]
    expected += [[False, False, True, True], [True, True, False, True], [False] * 4]
    assert [[flags[i] for i in ids] for ids in orders] == expected


async def test_0007_adds_and_drops_the_branding_columns(
    gateway: GatewayContext, merchant: MerchantKeys
) -> None:
    """Down to 0006 and up again on a database with a merchant (whose rows other tables point
    at): the merchant stays, the branding starts empty."""
    async with session_scope(gateway.sessions) as session:
        row = await session.get(Merchant, merchant.merchant_id)
        assert row is not None
        row.display_name, row.logo_url = "Shop", "https://cdn.shop.example/l.png"
    try:
        await _downgrade(gateway.engine, "0006")
        assert await current_revision(gateway.engine) == "0006"
        async with gateway.engine.connect() as connection:
            columns = await connection.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("merchants")}
            )
        assert not columns & {"display_name", "logo_url", "support_contact"}
    finally:
        await upgrade(gateway.engine)
    async with session_scope(gateway.sessions) as session:
        row = await session.get(Merchant, merchant.merchant_id)
        assert row is not None and row.name == "Test Shop"
        assert (row.display_name, row.logo_url, row.support_contact) == (None, None, None)
