"""exchange rates: latest quotes, their history, pricing rules, and fiat-priced orders

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ALTER TABLE (as 0007): a batch would copy ``orders``, which payments point at.
ORDER_COLUMNS = (
    ("fiat_amount", sa.String(length=48)),
    ("fiat_currency", sa.String(length=3)),
    ("rate", sa.String(length=48)),
    ("rate_source", sa.String(length=200)),
    ("rate_time_ms", sa.BigInteger()),
)


def _price_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("mid", sa.String(length=48), nullable=False),
        sa.Column("bid", sa.String(length=48), nullable=True),
        sa.Column("ask", sa.String(length=48), nullable=True),
        sa.Column("source_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at_ms", sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rate_quotes",
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("base", sa.String(length=10), nullable=False),
        sa.Column("quote", sa.String(length=10), nullable=False),
        *_price_columns(),
        sa.PrimaryKeyConstraint("source", "base", "quote", name=op.f("pk_rate_quotes")),
    )
    op.create_table(
        "rate_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("base", sa.String(length=10), nullable=False),
        sa.Column("quote", sa.String(length=10), nullable=False),
        *_price_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_history")),
    )
    op.create_index(
        "ix_rate_history_pair_time", "rate_history", ["base", "quote", "source_time_ms"]
    )
    op.create_index(op.f("ix_rate_history_fetched_at_ms"), "rate_history", ["fetched_at_ms"])
    op.create_table(
        "rate_rules",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=True),
        sa.Column("method", sa.String(length=10), nullable=True),
        sa.Column("spread_pct", sa.String(length=20), nullable=True),
        sa.Column("adjust", sa.String(length=40), nullable=True),
        sa.Column("max_age_s", sa.Integer(), nullable=True),
        sa.Column("band_pct", sa.String(length=20), nullable=True),
        sa.Column("step", sa.String(length=40), nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("scope", "symbol", "currency", name=op.f("pk_rate_rules")),
    )
    for name, type_ in ORDER_COLUMNS:
        op.add_column("orders", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _type in reversed(ORDER_COLUMNS):
        op.drop_column("orders", name)
    op.drop_table("rate_rules")
    op.drop_index(op.f("ix_rate_history_fetched_at_ms"), table_name="rate_history")
    op.drop_index("ix_rate_history_pair_time", table_name="rate_history")
    op.drop_table("rate_history")
    op.drop_table("rate_quotes")
