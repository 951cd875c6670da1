"""signed reads default: NULL means required once a public key is registered

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("signed_reads", existing_type=sa.Boolean(), nullable=True)
    # Until now false was also what every key got without a choice; from now on those keys
    # follow the default, so a key with a registered public key stops accepting unsigned reads.
    op.execute(sa.text("UPDATE api_keys SET signed_reads = NULL WHERE signed_reads = false"))


def downgrade() -> None:
    # Keep what the default meant for each key.
    op.execute(
        sa.text(
            "UPDATE api_keys SET signed_reads = EXISTS "
            "(SELECT 1 FROM api_public_keys WHERE api_public_keys.api_key_id = api_keys.id) "
            "WHERE signed_reads IS NULL"
        )
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("signed_reads", existing_type=sa.Boolean(), nullable=False)
