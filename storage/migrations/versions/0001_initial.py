"""The first schema: candles, imports, news, research, decisions, safety, control, orders.

Revision ID: 0001
Revises:

Written out in full rather than imported from storage.models: a migration is the schema as
it was at its revision, and must not change when the models do later.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# SQLite assigns ids only to a column declared exactly INTEGER PRIMARY KEY.
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOUBLE = sa.Float(precision=53)
SYMBOL = sa.String(length=40)
TIMEFRAME = sa.String(length=8)


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", SYMBOL, nullable=False),
        sa.Column("amount_step", DOUBLE, nullable=True),
        sa.Column("min_amount", DOUBLE, nullable=True),
        sa.Column("min_notional", DOUBLE, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instruments")),
        sa.UniqueConstraint("symbol", name=op.f("uq_instruments_symbol")),
    )
    op.create_table(
        "candles",
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("timeframe", TIMEFRAME, nullable=False),
        sa.Column("open_time", sa.BigInteger(), nullable=False),
        sa.Column("open", DOUBLE, nullable=False),
        sa.Column("high", DOUBLE, nullable=False),
        sa.Column("low", DOUBLE, nullable=False),
        sa.Column("close", DOUBLE, nullable=False),
        sa.Column("volume", DOUBLE, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["instruments.id"],
            name=op.f("fk_candles_instrument_id_instruments"),
        ),
        sa.PrimaryKeyConstraint("instrument_id", "timeframe", "open_time", name=op.f("pk_candles")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "candle_imports",
        sa.Column("id", AUTO_ID, nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("symbol", SYMBOL, nullable=False),
        sa.Column("timeframe", TIMEFRAME, nullable=False),
        sa.Column("rows_in_file", sa.Integer(), nullable=False),
        sa.Column("rows_added", sa.Integer(), nullable=False),
        sa.Column("rows_already_present", sa.Integer(), nullable=False),
        sa.Column("first_open_time", sa.BigInteger(), nullable=False),
        sa.Column("last_open_time", sa.BigInteger(), nullable=False),
        sa.Column("gaps", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candle_imports")),
    )
    op.create_table(
        "news_items",
        sa.Column("id", AUTO_ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("guid", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", sa.BigInteger(), nullable=False),
        sa.Column("sentiment", DOUBLE, nullable=True),
        sa.Column("symbols", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_items")),
        sa.UniqueConstraint("source", "guid", name=op.f("uq_news_items_source_guid")),
    )
    op.create_index(op.f("ix_news_items_published_at"), "news_items", ["published_at"])
    op.create_table(
        "research_observations",
        sa.Column("id", AUTO_ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("symbol", SYMBOL, nullable=True),
        sa.Column("value", DOUBLE, nullable=False),
        sa.Column("fetched_at", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_observations")),
    )
    op.create_index(
        op.f("ix_research_observations_fetched_at"), "research_observations", ["fetched_at"]
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("seq", AUTO_ID, sa.Identity(always=False), nullable=False),
        sa.Column("symbol", SYMBOL, nullable=False),
        sa.Column("timeframe", TIMEFRAME, nullable=False),
        sa.Column("as_of", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("engine_version", sa.String(length=32), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("size", DOUBLE, nullable=False),
        sa.Column("confidence", DOUBLE, nullable=False),
        sa.Column("score", DOUBLE, nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("seq", name=op.f("uq_decisions_seq")),
    )
    op.create_index(op.f("ix_decisions_action"), "decisions", ["action"])
    op.create_index(op.f("ix_decisions_symbol_as_of"), "decisions", ["symbol", "as_of"])
    op.create_index(op.f("ix_decisions_verdict"), "decisions", ["verdict"])
    op.create_table(
        "debate_turns",
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("turn_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("claim", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("strength", DOUBLE, nullable=False),
        sa.Column("target", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_debate_turns_decision_id_decisions")
        ),
        sa.PrimaryKeyConstraint("decision_id", "turn_index", name=op.f("pk_debate_turns")),
    )
    op.create_table(
        "safety_events",
        sa.Column("id", AUTO_ID, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("symbol", SYMBOL, nullable=True),
        sa.Column("decision_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_safety_events_decision_id_decisions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_events")),
    )
    op.create_table(
        "journal",
        sa.Column("seq", AUTO_ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_journal")),
    )
    op.create_table(
        "control_lock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_lock")),
    )
    op.create_table(
        "control_state_changes",
        sa.Column("id", AUTO_ID, nullable=False),
        sa.Column("journal_seq", AUTO_ID, nullable=False),
        sa.Column("symbol", SYMBOL, nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("cool_down_until", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "state IN ('ACTIVE', 'PAUSED', 'HALTED')",
            name=op.f("ck_control_state_changes_state"),
        ),
        sa.ForeignKeyConstraint(
            ["journal_seq"],
            ["journal.seq"],
            name=op.f("fk_control_state_changes_journal_seq_journal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_state_changes")),
        sa.UniqueConstraint("journal_seq", name=op.f("uq_control_state_changes_journal_seq")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("journal_seq", AUTO_ID, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=True),
        sa.Column("broker", sa.String(length=16), nullable=False),
        sa.Column("symbol", SYMBOL, nullable=False),
        sa.Column("timeframe", TIMEFRAME, nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", DOUBLE, nullable=False),
        sa.Column("reference_price", DOUBLE, nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_orders_side")),
        sa.CheckConstraint(
            "status IN ('open', 'filled', 'cancelled', 'rejected')",
            name=op.f("ck_orders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["journal_seq"], ["journal.seq"], name=op.f("fk_orders_journal_seq_journal")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
        sa.UniqueConstraint("journal_seq", name=op.f("uq_orders_journal_seq")),
    )
    op.create_index(op.f("ix_orders_symbol"), "orders", ["symbol"])
    op.create_index(op.f("ix_orders_decision_id"), "orders", ["decision_id"])
    op.create_index(op.f("ix_orders_status"), "orders", ["status"])
    op.create_table(
        "fills",
        sa.Column("id", AUTO_ID, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("symbol", SYMBOL, nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", DOUBLE, nullable=False),
        sa.Column("price", DOUBLE, nullable=False),
        sa.Column("fee", DOUBLE, nullable=False),
        sa.Column("slippage_fraction", DOUBLE, nullable=False),
        sa.Column("filled_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_fills_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
    )
    op.create_index(op.f("ix_fills_order_id"), "fills", ["order_id"])
    op.create_index(op.f("ix_fills_symbol"), "fills", ["symbol"])
    op.create_index(op.f("ix_fills_filled_at"), "fills", ["filled_at"])
    op.create_table(
        "api_errors",
        sa.Column("id", AUTO_ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_errors")),
    )
    op.create_index(op.f("ix_api_errors_at"), "api_errors", ["at"])


def downgrade() -> None:
    for table in (
        "api_errors",
        "fills",
        "orders",
        "control_state_changes",
        "control_lock",
        "journal",
        "safety_events",
        "debate_turns",
        "decisions",
        "research_observations",
        "news_items",
        "candle_imports",
        "candles",
        "instruments",
    ):
        op.drop_table(table)
