"""Decision records in a table of their own, so the decisions table stays narrow.

Revision ID: 0003
Revises: 0002

A record is about 13 kB of JSON. Inline, every decision row spilled onto its own pages and a
page of 50 summaries read 50+ pages of the file; apart, it reads a handful.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "decision_records",
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_decision_records_decision_id_decisions"),
        ),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_decision_records")),
    )
    op.execute(
        "INSERT INTO decision_records (decision_id, record) SELECT id, record FROM decisions"
    )
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop and recreate `decisions`,
    # which the foreign keys pointing at it forbid inside the migration's transaction.
    op.execute("ALTER TABLE decisions DROP COLUMN record")


def downgrade() -> None:
    op.add_column("decisions", sa.Column("record", sa.Text(), nullable=False, server_default=""))
    op.execute(
        "UPDATE decisions SET record = (SELECT record FROM decision_records "
        "WHERE decision_records.decision_id = decisions.id)"
    )
    op.drop_table("decision_records")
