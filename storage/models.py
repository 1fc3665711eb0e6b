"""The tables (DESIGN §7). Instants are epoch milliseconds; JSON is stored as text.

The migrations in ``storage/migrations`` create exactly these tables; a test compares them.
"""

from typing import Annotated, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints: a migration can only alter or drop a constraint it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite assigns ids only to a column declared exactly INTEGER PRIMARY KEY (64-bit there).
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

EpochMs = Annotated[int, mapped_column(sa.BigInteger)]
JsonText = Annotated[str, mapped_column(sa.Text)]
Symbol = Annotated[str, mapped_column(sa.String(40))]
Timeframe = Annotated[str, mapped_column(sa.String(8))]


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    # Prices, sizes and scores are doubles on every database.
    type_annotation_map: ClassVar[dict[Any, Any]] = {float: sa.Float(53)}


class InstrumentRow(Base):
    """A traded pair; candles refer to it by the id the database gave it."""

    __tablename__ = "instruments"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    symbol: Mapped[Symbol] = mapped_column(unique=True)
    # Exchange precision and minimums where known (NULL: not known, not enforced).
    amount_step: Mapped[float | None]
    min_amount: Mapped[float | None]
    min_notional: Mapped[float | None]


class CandleRow(Base):
    """One closed candle. The primary key's index serves the window query (newest first)."""

    __tablename__ = "candles"
    # Clustered by the key on SQLite: a window is one contiguous range read, not a lookup per row.
    __table_args__ = ({"sqlite_with_rowid": False},)

    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"), primary_key=True)
    timeframe: Mapped[Timeframe] = mapped_column(primary_key=True)
    open_time: Mapped[EpochMs] = mapped_column(primary_key=True)
    open: Mapped[float]
    high: Mapped[float]
    low: Mapped[float]
    close: Mapped[float]
    volume: Mapped[float]
    # Where the row came from: "sim", "import", "exchange:<id>".
    source: Mapped[str] = mapped_column(sa.String(32))


class CandleImportRow(Base):
    """One candle-file import, written in the same transaction as the candles it added."""

    __tablename__ = "candle_imports"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    file_sha256: Mapped[str] = mapped_column(sa.String(64))
    path: Mapped[str] = mapped_column(sa.Text)
    symbol: Mapped[Symbol]
    timeframe: Mapped[Timeframe]
    rows_in_file: Mapped[int]
    rows_added: Mapped[int]
    rows_already_present: Mapped[int]
    first_open_time: Mapped[EpochMs]
    last_open_time: Mapped[EpochMs]
    # [[open time after which candles are missing, how many], ...]
    gaps: Mapped[JsonText]
    imported_at: Mapped[EpochMs]


class NewsItemRow(Base):
    """A news item. ``symbols`` is a JSON list of the pairs and assets it mentions, in capitals."""

    __tablename__ = "news_items"
    __table_args__ = (sa.UniqueConstraint("source", "guid"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    guid: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    url: Mapped[str] = mapped_column(sa.Text, index=True)
    # The title as dedup compares it (lower case, no punctuation); NULL for items stored
    # before news ingestion existed.
    title_key: Mapped[str | None] = mapped_column(sa.Text, index=True)
    summary: Mapped[str] = mapped_column(sa.Text)
    published_at: Mapped[EpochMs] = mapped_column(index=True)
    fetched_at: Mapped[EpochMs]
    sentiment: Mapped[float | None]
    symbols: Mapped[JsonText]


class SourcePollRow(Base):
    """What the last poll of one outside source got (a news feed by its URL, a research
    source by its name): HTTP validators for the next conditional request, and how it went."""

    __tablename__ = "source_polls"

    key: Mapped[str] = mapped_column(sa.String(500), primary_key=True)
    etag: Mapped[str | None] = mapped_column(sa.Text)
    last_modified: Mapped[str | None] = mapped_column(sa.Text)
    polled_at: Mapped[EpochMs]
    # "new" (read), "not_modified" (304), "cached" (inside the rate limit) or "failed".
    outcome: Mapped[str] = mapped_column(sa.String(16))
    detail: Mapped[str] = mapped_column(sa.Text)


class ResearchObservationRow(Base):
    """One value of a research metric; ``symbol`` is a pair or an asset, or NULL market-wide."""

    __tablename__ = "research_observations"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    metric: Mapped[str] = mapped_column(sa.String(64))
    symbol: Mapped[str | None] = mapped_column(sa.String(40))
    value: Mapped[float]
    fetched_at: Mapped[EpochMs] = mapped_column(index=True)
    payload: Mapped[JsonText]


class DecisionRow(Base):
    """A decision: the fields that lists and filters need. The full record lives apart, in
    ``decision_records``: rows here stay small, so a page of a list reads a few pages of the
    table rather than one (plus overflow) per decision."""

    __tablename__ = "decisions"
    __table_args__ = (sa.Index(None, "symbol", "as_of"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # Insert order, for cursor pagination. PostgreSQL draws it from an identity sequence;
    # SQLite has none for a non-key column, so DecisionStore computes it in the insert.
    seq: Mapped[int] = mapped_column(AutoId, sa.Identity(), unique=True)
    symbol: Mapped[Symbol]
    timeframe: Mapped[Timeframe]
    as_of: Mapped[EpochMs]
    created_at: Mapped[EpochMs]
    mode: Mapped[str] = mapped_column(sa.String(16))
    engine_version: Mapped[str] = mapped_column(sa.String(32))
    config_hash: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(8), index=True)
    size: Mapped[float]
    confidence: Mapped[float]
    score: Mapped[float]
    verdict: Mapped[str] = mapped_column(sa.String(16), index=True)
    # Also tells the unit of work to insert the decision before its turns.
    turns: Mapped[list["DebateTurnRow"]] = relationship(order_by="DebateTurnRow.turn_index")


class DecisionRecordRow(Base):
    """The whole decision record as JSON, stored once with its decision."""

    __tablename__ = "decision_records"

    decision_id: Mapped[str] = mapped_column(sa.ForeignKey("decisions.id"), primary_key=True)
    record: Mapped[JsonText]


class DebateTurnRow(Base):
    """One debate turn of a decision, queryable on its own (the record holds them too)."""

    __tablename__ = "debate_turns"

    decision_id: Mapped[str] = mapped_column(sa.ForeignKey("decisions.id"), primary_key=True)
    turn_index: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    round: Mapped[int]
    speaker: Mapped[str] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(16))
    claim: Mapped[str] = mapped_column(sa.Text)
    evidence: Mapped[JsonText]
    strength: Mapped[float]
    target: Mapped[int | None]
    # The chat model behind the turn (core.decision.ModelCall as JSON); NULL for the rules.
    model: Mapped[str | None] = mapped_column(sa.Text)


class SafetyEventRow(Base):
    """A safety trigger or action (a blocked order, an auto-pause, a panic step)."""

    __tablename__ = "safety_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    at: Mapped[EpochMs]
    kind: Mapped[str] = mapped_column(sa.String(64))
    symbol: Mapped[str | None] = mapped_column(sa.String(40))
    decision_id: Mapped[str | None] = mapped_column(sa.ForeignKey("decisions.id"))
    detail: Mapped[JsonText]


class ControlStateChangeRow(Base):
    """A change of the control state, for every symbol (``symbol`` NULL) or for one.

    The highest id is the newest change: ids come from the database, so they order changes
    even when two carry the same ``at``.
    """

    __tablename__ = "control_state_changes"
    __table_args__ = (sa.CheckConstraint("state IN ('ACTIVE', 'PAUSED', 'HALTED')", name="state"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    journal_seq: Mapped[int] = mapped_column(sa.ForeignKey("journal.seq"), unique=True)
    symbol: Mapped[str | None] = mapped_column(sa.String(40))
    state: Mapped[str] = mapped_column(sa.String(8))
    reason: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[EpochMs]
    # An auto-pause may lift itself after this instant (NULL: only a person lifts it).
    cool_down_until: Mapped[int | None] = mapped_column(sa.BigInteger)


class JournalRow(Base):
    """One sequence across processes ordering control changes and orders.

    "No order after the panic" is judged on these numbers, never on wall clocks.
    """

    __tablename__ = "journal"

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[EpochMs]


class ControlLockRow(Base):
    """A table, never written, that every order placement locks in SHARE mode and every
    control change in EXCLUSIVE mode (PostgreSQL), so a panic and an order never interleave."""

    __tablename__ = "control_lock"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)


class OrderRow(Base):
    """An order as sent to a broker; its status changes, its row is never deleted."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.CheckConstraint("side IN ('buy', 'sell')", name="side"),
        sa.CheckConstraint("status IN ('open', 'filled', 'cancelled', 'rejected')", name="status"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    journal_seq: Mapped[int] = mapped_column(sa.ForeignKey("journal.seq"), unique=True)
    client_order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # No foreign key: the order goes out inside the decision path, and the decision record,
    # which lists it, is stored right after.
    decision_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    broker: Mapped[str] = mapped_column(sa.String(16))
    symbol: Mapped[Symbol] = mapped_column(index=True)
    timeframe: Mapped[Timeframe]
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[float]
    reference_price: Mapped[float]
    reduce_only: Mapped[bool]
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    # The earliest instant it may fill: the decision's as_of (the next candle's open).
    not_before: Mapped[EpochMs]
    created_at: Mapped[EpochMs]
    updated_at: Mapped[EpochMs]
    # An exchange broker's: the exchange's id once it confirmed the order (None before, and
    # for paper orders), and how much of it the exchange reports filled.
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    filled_quantity: Mapped[float] = mapped_column(server_default="0", default=0.0)


class FillRow(Base):
    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    symbol: Mapped[Symbol] = mapped_column(index=True)
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[float]
    price: Mapped[float]
    fee: Mapped[float]
    # Fill price against the order's reference price, adverse positive.
    slippage_fraction: Mapped[float]
    # Booked at the close of the candle whose open priced it (what a decision then may know).
    filled_at: Mapped[EpochMs] = mapped_column(index=True)
    # The exchange's trade id (exchange fills): a trade polled twice is booked once.
    exchange_trade_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True, index=True)


class ApiErrorRow(Base):
    """An error an exchange or data API answered with; bursts of them pause trading."""

    __tablename__ = "api_errors"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[EpochMs] = mapped_column(index=True)


class ApiKeyRow(Base):
    """A bearer key of the REST API. Only the SHA-256 of the secret is kept: the key is shown
    once, when made. Revoked keys stay, for the audit trail."""

    __tablename__ = "api_keys"
    __table_args__ = (sa.CheckConstraint("scope IN ('read', 'trade', 'admin')", name="scope"),)

    # The key's public part ("sgx_<id>_<secret>"): how a presented key finds its row.
    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(sa.String(64))
    scope: Mapped[str] = mapped_column(sa.String(8))
    label: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[EpochMs]
    revoked_at: Mapped[int | None] = mapped_column(sa.BigInteger)


class BookSummaryRow(Base):
    """The top of a symbol's order book at one instant: what a decision may cite of it."""

    __tablename__ = "book_summaries"
    __table_args__ = (sa.Index(None, "symbol", "taken_at"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    symbol: Mapped[Symbol]
    taken_at: Mapped[EpochMs]
    best_bid: Mapped[float]
    best_ask: Mapped[float]
    # (ask − bid) / mid.
    spread_fraction: Mapped[float]
    # (bid − ask quantity) / their sum, over the levels within ``band_fraction`` of the mid.
    imbalance: Mapped[float]
    band_fraction: Mapped[float]
    source: Mapped[str] = mapped_column(sa.String(32))


class ModelReplyRow(Base):
    """A chat model's answer to one prompt, under the prompt's hash: the replay cache, and the
    ledger of tokens spent (``created_at`` is the wall clock of the call)."""

    __tablename__ = "model_replies"
    __table_args__ = (sa.Index(None, "created_at"),)

    prompt_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    backend: Mapped[str] = mapped_column(sa.String(120))
    status: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    tokens_estimated: Mapped[bool]
    latency_ms: Mapped[float]
    attempts: Mapped[int]
    created_at: Mapped[EpochMs]


class BacktestRunRow(Base):
    """One `sigmax backtest` run: what it ran on and with, how fast, and its metrics."""

    __tablename__ = "backtest_runs"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    created_at: Mapped[EpochMs] = mapped_column(index=True)
    symbol: Mapped[Symbol]
    timeframe: Mapped[Timeframe]
    data_file: Mapped[str] = mapped_column(sa.Text)
    # sha256 of the data file's bytes (migration 0009); None for runs stored before it.
    data_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    first_as_of: Mapped[EpochMs]
    last_as_of: Mapped[EpochMs]
    bars: Mapped[int]
    triggers_enabled: Mapped[bool]
    engine_version: Mapped[str] = mapped_column(sa.String(32))
    config_hash: Mapped[str] = mapped_column(sa.String(64))
    seconds: Mapped[float]
    bars_per_second: Mapped[float]
    metrics: Mapped[JsonText]


class BacktestDecisionRow(Base):
    """One decided bar of a run: the proposal, the gate's ruling, the order, the equity."""

    __tablename__ = "backtest_decisions"

    run_id: Mapped[str] = mapped_column(sa.ForeignKey("backtest_runs.id"), primary_key=True)
    as_of: Mapped[EpochMs] = mapped_column(primary_key=True)
    close: Mapped[float]
    proposal_action: Mapped[str] = mapped_column(sa.String(4))
    score: Mapped[float]
    confidence: Mapped[float]
    verdict: Mapped[str] = mapped_column(sa.String(8))
    action: Mapped[str] = mapped_column(sa.String(4))
    size: Mapped[float]
    failed_checks: Mapped[JsonText]  # the names of the gate's failed checks
    trips: Mapped[JsonText]  # the triggers that tripped (and paused)
    execution: Mapped[str] = mapped_column(sa.String(16))
    execution_reason: Mapped[str] = mapped_column(sa.Text)
    order_id: Mapped[str | None] = mapped_column(sa.String(64))
    # For a sell, the signal that pushed the score down most (migration 0009); None for any
    # other bar, and for every bar of a run stored before it.
    exit_signal: Mapped[str | None] = mapped_column(sa.String(32))
    equity: Mapped[float]
    holding: Mapped[bool]


class BacktestFillRow(Base):
    """A fill of a run's backtest broker, in booking order."""

    __tablename__ = "backtest_fills"

    run_id: Mapped[str] = mapped_column(sa.ForeignKey("backtest_runs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.String(64))
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[float]
    price: Mapped[float]
    fee: Mapped[float]
    slippage_fraction: Mapped[float]
    filled_at: Mapped[EpochMs]
