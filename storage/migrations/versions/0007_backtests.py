"""Backtest runs, their decided bars and their fills, under the run's id.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_FLOAT = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "backtest_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("data_file", sa.Text(), nullable=False),
        sa.Column("first_as_of", sa.BigInteger(), nullable=False),
        sa.Column("last_as_of", sa.BigInteger(), nullable=False),
        sa.Column("bars", sa.Integer(), nullable=False),
        sa.Column("triggers_enabled", sa.Boolean(), nullable=False),
        sa.Column("engine_version", sa.String(length=32), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("seconds", _FLOAT, nullable=False),
        sa.Column("bars_per_second", _FLOAT, nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_runs")),
    )
    op.create_index(op.f("ix_backtest_runs_created_at"), "backtest_runs", ["created_at"])
    op.create_table(
        "backtest_decisions",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("as_of", sa.BigInteger(), nullable=False),
        sa.Column("close", _FLOAT, nullable=False),
        sa.Column("proposal_action", sa.String(length=4), nullable=False),
        sa.Column("score", _FLOAT, nullable=False),
        sa.Column("confidence", _FLOAT, nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=4), nullable=False),
        sa.Column("size", _FLOAT, nullable=False),
        sa.Column("failed_checks", sa.Text(), nullable=False),
        sa.Column("trips", sa.Text(), nullable=False),
        sa.Column("execution", sa.String(length=16), nullable=False),
        sa.Column("execution_reason", sa.Text(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("equity", _FLOAT, nullable=False),
        sa.Column("holding", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["backtest_runs.id"],
            name=op.f("fk_backtest_decisions_run_id_backtest_runs"),
        ),
        sa.PrimaryKeyConstraint("run_id", "as_of", name=op.f("pk_backtest_decisions")),
    )
    op.create_table(
        "backtest_fills",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", _FLOAT, nullable=False),
        sa.Column("price", _FLOAT, nullable=False),
        sa.Column("fee", _FLOAT, nullable=False),
        sa.Column("slippage_fraction", _FLOAT, nullable=False),
        sa.Column("filled_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["backtest_runs.id"], name=op.f("fk_backtest_fills_run_id_backtest_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_backtest_fills")),
    )


def downgrade() -> None:
    op.drop_table("backtest_fills")
    op.drop_table("backtest_decisions")
    op.drop_index(op.f("ix_backtest_runs_created_at"), table_name="backtest_runs")
    op.drop_table("backtest_runs")
