"""dashboard accounts: users, sessions, mailed links, invites; merchant status, key labels

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["dashboard_users.id"],
        name=op.f(f"fk_{table}_user_id_dashboard_users"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    # Plain ALTER TABLE (as 0007): a batch would copy ``merchants`` and ``api_keys``, which other
    # tables point at. Every existing merchant was made by the operator, so it is active.
    op.add_column(
        "merchants",
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
    )
    op.add_column("api_keys", sa.Column("label", sa.String(length=80), nullable=True))
    op.create_table(
        "dashboard_users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("email_verified_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_login_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_dashboard_users_merchant_id_merchants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_users")),
        sa.UniqueConstraint("email", name=op.f("uq_dashboard_users_email")),
    )
    op.create_index(
        op.f("ix_dashboard_users_merchant_id"), "dashboard_users", ["merchant_id"], unique=False
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        _user_fk("dashboard_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_dashboard_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_dashboard_sessions_user_id"), "dashboard_sessions", ["user_id"], unique=False
    )
    op.create_table(
        "email_links",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_at_ms", sa.BigInteger(), nullable=True),
        _user_fk("email_links"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_links")),
    )
    op.create_index(op.f("ix_email_links_user_id"), "email_links", ["user_id"], unique=False)
    op.create_table(
        "signup_invites",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("used_by_merchant_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_invites")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_signup_invites_code_hash")),
    )


def downgrade() -> None:
    op.drop_table("signup_invites")
    op.drop_index(op.f("ix_email_links_user_id"), table_name="email_links")
    op.drop_table("email_links")
    op.drop_index(op.f("ix_dashboard_sessions_user_id"), table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
    op.drop_index(op.f("ix_dashboard_users_merchant_id"), table_name="dashboard_users")
    op.drop_table("dashboard_users")
    op.drop_column("api_keys", "label")
    op.drop_column("merchants", "status")
