"""News and research ingestion: a dedup key on news items, the state of each polled source.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("news_items", sa.Column("title_key", sa.Text(), nullable=True))
    op.create_index(op.f("ix_news_items_title_key"), "news_items", ["title_key"])
    op.create_index(op.f("ix_news_items_url"), "news_items", ["url"])
    op.create_table(
        "source_polls",
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("polled_at", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_source_polls")),
    )


def downgrade() -> None:
    op.drop_table("source_polls")
    op.drop_index(op.f("ix_news_items_url"), table_name="news_items")
    op.drop_index(op.f("ix_news_items_title_key"), table_name="news_items")
    op.execute("ALTER TABLE news_items DROP COLUMN title_key")
