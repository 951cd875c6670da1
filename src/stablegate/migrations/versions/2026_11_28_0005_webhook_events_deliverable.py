"""webhook events: a deliverable flag and a partial index for the claim

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00.000000

The claim worked the per-order ordering rule out with a correlated NOT EXISTS, which
PostgreSQL planned as a nested loop over every pending row when its statistics said few rows
were pending (seconds per claim after a burst). The rule is now kept per row in
``deliverable`` (see stablegate/webhooks/ordering.py), and claims read the partial index of
deliverable rows. The full index on ``next_attempt_at_ms`` served only the old claim.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ORDER_RELEASE_ATTEMPTS when this revision was written (frozen here on purpose).
RELEASE_ATTEMPTS = 7


def upgrade() -> None:
    # No batch mode: on SQLite a table rebuild cannot drop webhook_events inside the migration's
    # transaction while webhook_deliveries rows point at it (foreign keys are on).
    op.add_column(
        "webhook_events",
        sa.Column("deliverable", sa.Boolean(), nullable=False, server_default=sa.false()),
    )

    # Pending, and no earlier event of its order pending with fewer than 7 attempts.
    events = sa.table(
        "webhook_events",
        sa.column("order_id", sa.String()),
        sa.column("sequence", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("attempts", sa.Integer()),
        sa.column("deliverable", sa.Boolean()),
    )
    earlier = events.alias("earlier")
    held = (
        sa.select(earlier.c.order_id)
        .where(
            earlier.c.order_id == events.c.order_id,
            earlier.c.sequence < events.c.sequence,
            earlier.c.status == "pending",
            earlier.c.attempts < RELEASE_ATTEMPTS,
        )
        .exists()
    )
    op.execute(events.update().where(events.c.status == "pending", ~held).values(deliverable=True))

    op.drop_index("ix_webhook_events_next_attempt_at_ms", table_name="webhook_events")
    op.create_index(
        "ix_webhook_events_deliverable_due",
        "webhook_events",
        ["next_attempt_at_ms", "id"],
        unique=False,
        postgresql_where=sa.text("deliverable"),
        sqlite_where=sa.text("deliverable = 1"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_deliverable_due", table_name="webhook_events")
    op.create_index(
        "ix_webhook_events_next_attempt_at_ms",
        "webhook_events",
        ["next_attempt_at_ms"],
        unique=False,
    )
    op.drop_column("webhook_events", "deliverable")
