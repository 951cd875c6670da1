"""greenfield webhooks: a store's BTCPay-style webhook (url, sealed secret, events)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "greenfield_webhooks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_greenfield_webhooks_merchant_id_merchants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_greenfield_webhooks")),
    )
    op.create_index(
        "ix_greenfield_webhooks_merchant",
        "greenfield_webhooks",
        ["merchant_id", "enabled"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_greenfield_webhooks_merchant", table_name="greenfield_webhooks")
    op.drop_table("greenfield_webhooks")
