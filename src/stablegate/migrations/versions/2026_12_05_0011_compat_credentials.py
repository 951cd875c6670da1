"""compatibility credentials: the kind of an API key and a compat key's chain, token and
currency; an order's notification format and the compat key that created it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (as 0009, 0010): a batch would copy tables other tables point at. Every
    # existing key is a signed API key and every existing order sends signed webhooks.
    op.add_column(
        "api_keys",
        sa.Column("kind", sa.String(length=16), server_default="signed", nullable=False),
    )
    op.add_column("api_keys", sa.Column("compat_chain_id", sa.Integer(), nullable=True))
    op.add_column("api_keys", sa.Column("compat_symbol", sa.String(length=20), nullable=True))
    op.add_column("api_keys", sa.Column("compat_currency", sa.String(length=3), nullable=True))
    op.add_column(
        "orders",
        sa.Column("notify_format", sa.String(length=16), server_default="signed", nullable=False),
    )
    op.add_column("orders", sa.Column("compat_key_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "compat_key_id")
    op.drop_column("orders", "notify_format")
    op.drop_column("api_keys", "compat_currency")
    op.drop_column("api_keys", "compat_symbol")
    op.drop_column("api_keys", "compat_chain_id")
    op.drop_column("api_keys", "kind")
