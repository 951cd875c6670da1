"""order repoint time: when a customer's choice of payment method moved the order, indexed per
chain for the watcher's refresh

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVED = sa.text("repoint_time_ms IS NOT NULL")


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN and CREATE INDEX: SQLite has both, and a batch copy of the
    # orders table would break the foreign keys that point at it.
    op.add_column("orders", sa.Column("repoint_time_ms", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_orders_chain_repointed",
        "orders",
        ["chain_id", "repoint_time_ms"],
        unique=False,
        postgresql_where=MOVED,
        sqlite_where=MOVED,
    )


def downgrade() -> None:
    op.drop_index("ix_orders_chain_repointed", table_name="orders")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place; a batch copy would break the foreign keys.
        op.execute("ALTER TABLE orders DROP COLUMN repoint_time_ms")
    else:
        op.drop_column("orders", "repoint_time_ms")
