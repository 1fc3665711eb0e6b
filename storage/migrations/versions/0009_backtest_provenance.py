"""Backtests: the data file's sha256 on the run, the exit signal on each decided bar.

Both nullable: runs stored before this revision keep reading back, with None for each.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("backtest_runs", sa.Column("data_sha256", sa.String(length=64), nullable=True))
    op.add_column(
        "backtest_decisions", sa.Column("exit_signal", sa.String(length=32), nullable=True)
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), as 0003 and 0008 do: a batch rebuild would recreate
    # a table another table points at.
    op.execute("ALTER TABLE backtest_decisions DROP COLUMN exit_signal")
    op.execute("ALTER TABLE backtest_runs DROP COLUMN data_sha256")
