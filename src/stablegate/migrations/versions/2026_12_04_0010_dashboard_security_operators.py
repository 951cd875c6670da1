"""dashboard security and operators: key last use and IP allowlist, TOTP and recovery codes,
pending second factor, operator accounts and sessions, run-time gateway settings

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECOND_FACTOR_COLUMNS = (
    "totp_secret_enc",
    "totp_enabled_at_ms",
    "totp_last_step",
    "recovery_hashes",
)


def _second_factor_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("totp_secret_enc", sa.Text(), nullable=True),
        sa.Column("totp_enabled_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("recovery_hashes", sa.Text(), nullable=True),
    ]


def _pending_column() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "second_factor_pending", sa.Boolean(), server_default=sa.false(), nullable=False
    )


def upgrade() -> None:
    # Plain ADD COLUMN (as 0009): a batch would copy tables other tables point at.
    op.add_column("api_keys", sa.Column("last_used_at_ms", sa.BigInteger(), nullable=True))
    op.add_column("api_keys", sa.Column("ip_allowlist", sa.Text(), nullable=True))
    for column in _second_factor_columns():
        op.add_column("dashboard_users", column)
    op.add_column("dashboard_sessions", _pending_column())
    op.create_table(
        "operator_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_login_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("disabled_at_ms", sa.BigInteger(), nullable=True),
        *_second_factor_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_accounts")),
        sa.UniqueConstraint("email", name=op.f("uq_operator_accounts_email")),
    )
    op.create_table(
        "operator_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        _pending_column(),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operator_accounts.id"],
            name=op.f("fk_operator_sessions_operator_id_operator_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_operator_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_operator_sessions_operator_id"),
        "operator_sessions",
        ["operator_id"],
        unique=False,
    )
    op.create_table(
        "gateway_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gateway_settings")),
    )


def downgrade() -> None:
    op.drop_table("gateway_settings")
    op.drop_index(op.f("ix_operator_sessions_operator_id"), table_name="operator_sessions")
    op.drop_table("operator_sessions")
    op.drop_table("operator_accounts")
    op.drop_column("dashboard_sessions", "second_factor_pending")
    for name in reversed(SECOND_FACTOR_COLUMNS):
        op.drop_column("dashboard_users", name)
    op.drop_column("api_keys", "ip_allowlist")
    op.drop_column("api_keys", "last_used_at_ms")
