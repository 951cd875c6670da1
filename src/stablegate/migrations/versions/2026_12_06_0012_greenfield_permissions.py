"""greenfield credentials: the permissions of a compatibility key

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (as 0011): NULL on every existing key, none of which is a greenfield one.
    op.add_column("api_keys", sa.Column("compat_permissions", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "compat_permissions")
