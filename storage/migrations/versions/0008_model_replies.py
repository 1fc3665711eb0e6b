"""Chat-model backends: the replay cache of answers, and the model behind each debate turn.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "model_replies",
        sa.Column("prompt_hash", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("tokens_estimated", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(precision=53), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("prompt_hash", name=op.f("pk_model_replies")),
    )
    op.create_index(op.f("ix_model_replies_created_at"), "model_replies", ["created_at"])
    op.add_column("debate_turns", sa.Column("model", sa.Text(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), as 0003 does: a batch rebuild would recreate a table
    # other tables point at.
    op.execute("ALTER TABLE debate_turns DROP COLUMN model")
    op.drop_index(op.f("ix_model_replies_created_at"), table_name="model_replies")
    op.drop_table("model_replies")
