"""merchant branding: display name, logo URL and support contact shown on the cashier

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not a batch: SQLite (3.35+) adds and drops these columns in place, where a
# batch would copy and drop ``merchants``, which every other table's foreign keys point at.
COLUMNS = (("display_name", 80), ("logo_url", 512), ("support_contact", 200))


def upgrade() -> None:
    for name, length in COLUMNS:
        op.add_column("merchants", sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    for name, _length in reversed(COLUMNS):
        op.drop_column("merchants", name)
