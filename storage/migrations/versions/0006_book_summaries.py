"""Order-book summaries (best bid and ask, spread, depth imbalance) as decision evidence.

Revision ID: 0006
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "book_summaries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("taken_at", sa.BigInteger(), nullable=False),
        sa.Column("best_bid", sa.Float(precision=53), nullable=False),
        sa.Column("best_ask", sa.Float(precision=53), nullable=False),
        sa.Column("spread_fraction", sa.Float(precision=53), nullable=False),
        sa.Column("imbalance", sa.Float(precision=53), nullable=False),
        sa.Column("band_fraction", sa.Float(precision=53), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_book_summaries")),
    )
    op.create_index(
        op.f("ix_book_summaries_symbol_taken_at"), "book_summaries", ["symbol", "taken_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_book_summaries_symbol_taken_at"), table_name="book_summaries")
    op.drop_table("book_summaries")
