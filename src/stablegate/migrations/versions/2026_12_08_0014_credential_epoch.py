"""credential epoch: a counter bumped by triggers whenever a key's credentials may change

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP = "UPDATE credential_epoch SET epoch = epoch + 1 WHERE id = 1"

# (table, events): what may change what a cached key may do. api_keys' last_used_at_ms (written
# once a minute per key) is not among the columns, or the epoch would move all the time.
WATCHED: list[tuple[str, list[str]]] = [
    (
        "api_keys",
        [
            "UPDATE OF revoked_at_ms, secret_enc, v2_enabled, signed_reads, ip_allowlist, kind, "
            "key_hash, merchant_id",
            "DELETE",
        ],
    ),
    ("api_public_keys", ["INSERT", "UPDATE", "DELETE"]),
    ("merchants", ["UPDATE OF status, deposit_strategy", "DELETE"]),
    ("payout_addresses", ["INSERT", "UPDATE", "DELETE"]),
]


def _trigger_name(table: str, event: str) -> str:
    return f"credential_epoch_{table}_{event.split(maxsplit=1)[0].lower()}"


def upgrade() -> None:
    op.create_table(
        "credential_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_epoch")),
    )
    op.execute("INSERT INTO credential_epoch (id, epoch) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION stablegate_bump_credential_epoch() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table, events in WATCHED:
            # Once per statement: a bulk change bumps it once.
            op.execute(
                f"CREATE TRIGGER credential_epoch_{table} AFTER {' OR '.join(events)} "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION stablegate_bump_credential_epoch()"
            )
        return
    for table, events in WATCHED:
        for event in events:
            op.execute(
                f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event} ON {table} "
                f"BEGIN {BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _events in WATCHED:
            op.execute(f"DROP TRIGGER credential_epoch_{table} ON {table}")
        op.execute("DROP FUNCTION stablegate_bump_credential_epoch()")
    else:
        for table, events in WATCHED:
            for event in events:
                op.execute(f"DROP TRIGGER {_trigger_name(table, event)}")
    op.drop_table("credential_epoch")
