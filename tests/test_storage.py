"""Storage on SQLite and PostgreSQL: schema, candle window, decisions, control, safety, view."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from core.candles import CandleWindow
from core.decision import (
    Abstained,
    DebateTurn,
    DebateVerdict,
    Decision,
    Execution,
    InputHashes,
    Proposal,
    SafetyCheck,
    SafetyReport,
    SentimentReading,
    Signals,
)
from core.evidence import Evidence
from core.market_view import MarketView
from core.timeframes import parse_timestamp
from core.version import ENGINE_VERSION
from storage.candles import CandleConflictError, CandleStore
from storage.control import ControlStore
from storage.decisions import DecisionFilters, DecisionStore
from storage.engine import Database, create_engine_for, open_database
from storage.market_view import StoredMarketView
from storage.migrate import MIGRATIONS, current_revision
from storage.models import (
    Base,
    DebateTurnRow,
    DecisionRecordRow,
    DecisionRow,
    NewsItemRow,
    ResearchObservationRow,
)
from storage.safety_events import SafetyEventStore

STEP = 300_000  # 5m
T0 = parse_timestamp("2023-01-02T00:00:00Z")


def synthetic_candles(
    count: int, start: int = T0, price: float = 100.0, source: str = "sim"
) -> CandleWindow:
    """``count`` consecutive 5m BTC/USDT candles, each closing one above its open."""
    opens = price + np.arange(count, dtype=np.float64)
    return CandleWindow(
        symbol="BTC/USDT",
        timeframe="5m",
        timeframe_ms=STEP,
        open_time=start + STEP * np.arange(count, dtype=np.int64),
        open=opens,
        high=opens + 2.0,
        low=opens - 1.0,
        close=opens + 1.0,
        volume=np.full(count, 10.0),
        sources=(source,),
    )


def count_rows(database: Database, model: type[Base]) -> int:
    with database.session_factory() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


# --- schema -----------------------------------------------------------------------------


def test_migrations_create_every_table_and_match_the_models(database: Database) -> None:
    tables = set(sa.inspect(database.engine).get_table_names())
    assert tables == {*Base.metadata.tables, "alembic_version"}
    assert current_revision(database.engine) == "0009"
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_opening_again_migrates_nothing_and_keeps_the_data(database_url: str) -> None:
    first = open_database(database_url)
    CandleStore(first.session_factory).insert_candles(synthetic_candles(3))
    again = open_database(database_url)
    try:
        assert current_revision(again.engine) == "0009"
        assert (
            len(CandleStore(again.session_factory).window("BTC/USDT", "5m", T0 + 3 * STEP, 10)) == 3
        )
    finally:
        first.dispose()
        again.dispose()


def test_sqlite_file_gets_its_folder_and_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    database = open_database(f"sqlite:///{path}")
    try:
        with database.engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        database.dispose()
    assert path.is_file()
    # synchronous 1 is NORMAL.
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 30000,
    }


# --- candles ------------------------------------------------------------------------------


def test_window_holds_the_newest_closed_candles_oldest_first(database: Database) -> None:
    store = CandleStore(database.session_factory)
    store.insert_candles(synthetic_candles(10))
    sixth_closes = T0 + 7 * STEP  # the candle opening at T0 + 6 steps closes here

    window = store.window("BTC/USDT", "5m", sixth_closes, 3)
    assert window.open_time.tolist() == [T0 + 4 * STEP, T0 + 5 * STEP, T0 + 6 * STEP]
    assert window.close.tolist() == [105.0, 106.0, 107.0]
    assert window.open_time.dtype == np.int64
    assert window.close.dtype == np.float64
    assert window.sources == ("sim",)
    assert len(store.window("BTC/USDT", "5m", sixth_closes, 100)) == 7
    # One millisecond earlier that candle is still forming.
    assert store.window("BTC/USDT", "5m", sixth_closes - 1, 1).open_time.tolist() == [T0 + 5 * STEP]


def test_window_never_returns_a_candle_closing_after_as_of(database: Database) -> None:
    store = CandleStore(database.session_factory)
    as_of = T0 + 20 * STEP + STEP // 2  # half-way through the 21st candle
    store.insert_candles(synthetic_candles(20))
    before = store.window("BTC/USDT", "5m", as_of, 250)

    # Poison: the forming candle and everything after it, absurd values.
    poison = synthetic_candles(30, start=T0 + 20 * STEP, price=1e9)
    store.insert_candles(poison)
    after = store.window("BTC/USDT", "5m", as_of, 250)

    assert after.content_hash() == before.content_hash()
    assert after.last_close_time == T0 + 20 * STEP  # the last candle closed by as_of
    assert float(after.high.max()) < 1e9


def test_window_of_an_unknown_symbol_is_empty(database: Database) -> None:
    window = CandleStore(database.session_factory).window("ETH/USDT", "5m", T0, 250)
    assert len(window) == 0
    assert window.last_close_time is None
    assert window.sources == ()


def test_window_refuses_a_limit_below_one(database: Database) -> None:
    with pytest.raises(ValueError, match="limit of at least 1"):
        CandleStore(database.session_factory).window("BTC/USDT", "5m", T0, 0)


def test_inserting_identical_candles_again_adds_nothing(database: Database) -> None:
    store = CandleStore(database.session_factory)
    first = store.insert_candles(synthetic_candles(5))
    again = store.insert_candles(synthetic_candles(8))
    assert (first.added, first.already_present) == (5, 0)
    assert (again.added, again.already_present) == (3, 5)


def test_a_conflicting_candle_writes_nothing_and_says_where(database: Database) -> None:
    store = CandleStore(database.session_factory)
    store.insert_candles(synthetic_candles(5))
    changed = synthetic_candles(8)
    changed.low[3] = 102.5  # stored: 102.0

    with pytest.raises(CandleConflictError) as caught:
        store.insert_candles(changed)

    assert (caught.value.index, caught.value.column) == (3, "low")
    assert str(caught.value) == (
        "the candle at 2023-01-02T00:15:00Z is already stored with low 102.0, not 102.5"
    )
    assert len(store.window("BTC/USDT", "5m", T0 + 100 * STEP, 250)) == 5


def test_coverage_counts_missing_bars_and_latest_open_time(database: Database) -> None:
    store = CandleStore(database.session_factory)
    assert store.coverage("BTC/USDT", "5m") is None
    assert store.latest_open_time("BTC/USDT", "5m") is None
    store.insert_candles(synthetic_candles(4))
    store.insert_candles(synthetic_candles(2, start=T0 + 10 * STEP, price=110.0))

    coverage = store.coverage("BTC/USDT", "5m")
    assert coverage is not None
    assert (coverage.first_open_time, coverage.last_open_time) == (T0, T0 + 11 * STEP)
    assert (coverage.count, coverage.missing_bars) == (6, 6)
    assert store.latest_open_time("BTC/USDT", "5m") == T0 + 11 * STEP
    assert store.coverage("BTC/USDT", "1h") is None


def test_instrument_ids_come_from_the_database(database: Database) -> None:
    store = CandleStore(database.session_factory)
    assert store.instrument_id("BTC/USDT") is None
    created = store.instrument_id("BTC/USDT", create=True)
    assert store.instrument_id("BTC/USDT") == created
    assert CandleStore(database.session_factory).instrument_id("BTC/USDT") == created
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        store.instrument_id("btc-usdt", create=True)


def test_an_instrument_added_in_a_rolled_back_transaction_is_not_remembered(
    database: Database,
) -> None:
    store = CandleStore(database.session_factory)

    def add_then_roll_back() -> None:
        with database.session_factory.begin() as session:
            store.add_candles(session, synthetic_candles(3))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        add_then_roll_back()

    assert store.instrument_id("BTC/USDT") is None
    assert store.insert_candles(synthetic_candles(3)).added == 3


# --- decisions ----------------------------------------------------------------------------


def make_decision(decision_id: str, symbol: str = "BTC/USDT", turns: int = 4) -> Decision:
    evidence = (Evidence(name="rsi_14", value=27.3, window="14 bars to 2023-01-20T12:00:00Z"),)
    return Decision(
        id=decision_id,
        symbol=symbol,
        timeframe="5m",
        as_of="2023-01-20T12:00:00Z",
        created_at="2023-01-20T12:00:01.250Z",
        mode="backtest",
        engine_version=ENGINE_VERSION,
        config_hash="c" * 64,
        inputs=InputHashes(candles="a" * 64, news="b" * 64, research="d" * 64),
        evidence=evidence,
        proposal=Proposal(
            action="buy",
            size=0.1,
            confidence=0.62,
            score=0.41,
            contributions={"debate": 0.41, "sentiment": 0.03},
            reason="the bull case outweighs the bear case",
        ),
        signals=Signals(
            debate=DebateVerdict(
                score=0.41,
                confidence=0.62,
                rounds_run=2,
                stopped_early=False,
                bull_strength=0.7,
                bear_strength=0.3,
            ),
            rl=Abstained(reason="no RL policy"),
            sentiment=SentimentReading(score=0.1, item_count=3),
        ),
        debate=tuple(
            DebateTurn(
                index=index,
                round=index // 2,
                speaker="bull" if index % 2 == 0 else "bear",
                kind="argument" if index < 2 else "rebuttal",
                claim=f"claim {index}",
                evidence=evidence,
                strength=0.5,
                target=None if index < 2 else index - 1,
            )
            for index in range(turns)
        ),
        safety=SafetyReport(
            verdict="reduced",
            control_state="ACTIVE",
            checks=(SafetyCheck(name="min_confidence", passed=True, detail="0.62 >= 0.30"),),
            action="buy",
            size=0.05,
        ),
        execution=Execution(status="not_executed", reason="no broker attached"),
        timings_ms={"graph": 1.5},
    )


def test_a_saved_decision_reads_back_equal(database: Database) -> None:
    store = DecisionStore(database)
    decision = make_decision("00000000-0000-4000-8000-000000000001")
    store.save(decision)

    assert store.get(decision.id) == decision
    assert store.get("no-such-decision") is None
    assert count_rows(database, DebateTurnRow) == 4


def test_decisions_list_newest_first_by_page_and_symbol(database: Database) -> None:
    store = DecisionStore(database)
    for number in range(5):
        symbol = "ETH/USDT" if number == 2 else "BTC/USDT"
        store.save(make_decision(f"decision-{number}", symbol=symbol))

    page = store.list(limit=3)
    assert [summary.id for summary in page] == ["decision-4", "decision-3", "decision-2"]
    assert page[0].seq > page[1].seq > page[2].seq
    rest = store.list(limit=3, before_seq=page[-1].seq)
    assert [summary.id for summary in rest] == ["decision-1", "decision-0"]
    assert [summary.id for summary in store.list(DecisionFilters(symbol="ETH/USDT"))] == [
        "decision-2"
    ]
    summary = page[0]
    assert (summary.action, summary.size, summary.confidence, summary.verdict) == (
        "buy",
        0.05,
        0.62,
        "reduced",
    )
    assert (summary.as_of, summary.mode) == (parse_timestamp("2023-01-20T12:00:00Z"), "backtest")


def test_a_batch_of_decisions_is_stored_in_order_with_its_turns(database: Database) -> None:
    store = DecisionStore(database)
    store.save(make_decision("first"))
    store.save_all([(make_decision(f"batch-{number}", turns=2), ()) for number in range(4)])
    listed = store.list(limit=10)
    assert [summary.id for summary in listed] == [
        "batch-3",
        "batch-2",
        "batch-1",
        "batch-0",
        "first",
    ]
    assert len({summary.seq for summary in listed}) == 5
    assert [summary.id for summary in store.after(listed[-1].seq)] == [
        f"batch-{number}" for number in range(4)
    ]
    assert count_rows(database, DebateTurnRow) == 4 + 4 * 2


def test_a_failure_among_the_debate_turns_leaves_no_decision(database: Database) -> None:
    store = DecisionStore(database)
    statements: list[str] = []

    def fail_on_the_turns(*args: Any) -> None:
        statement = args[2]  # (connection, cursor, statement, ...)
        statements.append(statement)
        if statement.startswith("INSERT INTO debate_turns"):
            raise RuntimeError("disk full while writing the debate turns")

    sa.event.listen(database.engine, "before_cursor_execute", fail_on_the_turns)
    try:
        with pytest.raises(RuntimeError, match="debate turns"):
            store.save(make_decision("doomed", turns=5))
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", fail_on_the_turns)

    # The decision row had been sent to the database before the failure, and was rolled back.
    assert any(statement.startswith("INSERT INTO decisions") for statement in statements)
    assert store.get("doomed") is None
    assert count_rows(database, DecisionRow) == 0
    assert count_rows(database, DecisionRecordRow) == 0
    assert count_rows(database, DebateTurnRow) == 0


def test_records_stored_inline_before_0003_move_to_their_table_intact(database_url: str) -> None:
    """A database made by 0002 (records inside `decisions`) opened by this version."""
    decision = make_decision("from-0002")
    engine = create_engine_for(database_url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        values = {
            "id": decision.id,
            "seq": 1,
            "symbol": decision.symbol,
            "timeframe": decision.timeframe,
            "as_of": parse_timestamp(decision.as_of),
            "created_at": parse_timestamp(decision.created_at),
            "mode": decision.mode,
            "engine_version": decision.engine_version,
            "config_hash": decision.config_hash,
            "action": decision.action,
            "size": decision.safety.size,
            "confidence": decision.proposal.confidence,
            "score": decision.proposal.score,
            "verdict": decision.safety.verdict,
            "record": decision.model_dump_json(),
        }
        columns = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        connection.execute(sa.text(f"INSERT INTO decisions ({columns}) VALUES ({marks})"), values)
    engine.dispose()

    upgraded = open_database(database_url)
    try:
        assert current_revision(upgraded.engine) == "0009"
        assert DecisionStore(upgraded).get("from-0002") == decision
        assert [s.id for s in DecisionStore(upgraded).list()] == ["from-0002"]
    finally:
        upgraded.dispose()


# --- control state and safety events ------------------------------------------------------


def test_control_state_is_active_until_changed(database: Database) -> None:
    current = ControlStore(database).current()
    assert (current.state, current.reason, current.since) == (
        "ACTIVE",
        "no control change recorded",
        None,
    )


def test_the_latest_control_change_wins(database: Database) -> None:
    store = ControlStore(database)
    store.record("PAUSED", "daily loss limit", "gate", at_ms=2_000)
    store.record("HALTED", "panic", "operator", at_ms=2_000)
    assert store.current().state == "HALTED"
    # Recorded later with an earlier clock: still the newest change.
    store.record("ACTIVE", "resumed after review", "operator", at_ms=1_000)
    current = store.current()
    assert (current.state, current.reason, current.actor, current.since) == (
        "ACTIVE",
        "resumed after review",
        "operator",
        1_000,
    )


def test_a_symbol_takes_the_stricter_of_its_own_and_the_global_state(database: Database) -> None:
    store = ControlStore(database)
    store.record("PAUSED", "abnormal move", "gate", at_ms=1_000, symbol="BTC/USDT")
    assert store.current("BTC/USDT").state == "PAUSED"
    assert store.current("ETH/USDT").state == "ACTIVE"
    assert store.current().state == "ACTIVE"
    store.record("HALTED", "panic", "operator", at_ms=2_000)
    assert store.current("BTC/USDT").state == "HALTED"
    store.record("ACTIVE", "resumed", "operator", at_ms=3_000)
    assert store.current("BTC/USDT").reason == "abnormal move"


def test_safety_events_list_newest_first(database: Database) -> None:
    decisions = DecisionStore(database)
    decisions.save(make_decision("blocked-one"))
    store = SafetyEventStore(database.session_factory)
    store.record("circuit_breaker", "BTC/USDT", {"move_pct": 12.5}, at_ms=1_000)
    store.record("blocked", "BTC/USDT", {"check": "min_confidence"}, 2_000, "blocked-one")

    newest, oldest = store.list(limit=10)
    assert (newest.kind, newest.decision_id, newest.detail) == (
        "blocked",
        "blocked-one",
        {"check": "min_confidence"},
    )
    assert (oldest.kind, oldest.at, oldest.detail) == ("circuit_breaker", 1_000, {"move_pct": 12.5})
    assert len(store.list(limit=1)) == 1


# --- the market view ------------------------------------------------------------------------


def add_news(database: Database, *items: tuple[str, int, list[str]]) -> None:
    with database.session_factory.begin() as session:
        session.add_all(
            NewsItemRow(
                source="rss:test",
                guid=title,
                title=title,
                url=f"https://news.test/{index}",
                summary="",
                published_at=published_at,
                fetched_at=published_at + 1,
                sentiment=0.5,
                symbols=json.dumps(symbols),
            )
            for index, (title, published_at, symbols) in enumerate(items)
        )


def test_market_view_news_stop_at_as_of(database: Database) -> None:
    as_of = 10_000
    add_news(
        database,
        ("old pair news", 1_000, ["BTC/USDT"]),
        ("asset news", 5_000, ["BTC", "ETH"]),
        ("at as_of", as_of, ["BTC"]),
        ("other asset", 6_000, ["ETH"]),
        ("not our asset", 7_000, ["WBTC"]),
        ("poison: one ms late", as_of + 1, ["BTC/USDT"]),
        ("poison: far future", as_of + 10**9, ["BTC"]),
    )
    view: MarketView = StoredMarketView(database.session_factory, as_of)

    news = view.news("BTC/USDT", 10)
    assert [item.title for item in news] == ["at as_of", "asset news", "old pair news"]
    assert all(item.published_at <= as_of for item in news)
    assert news[1].symbols == ("BTC", "ETH")
    assert [item.title for item in view.news("BTC/USDT", 1)] == ["at as_of"]


def test_market_view_research_is_the_newest_value_by_as_of(database: Database) -> None:
    as_of = 10_000
    observations = [
        ("fear_greed", None, 40.0, 1_000),
        ("fear_greed", None, 55.0, 9_000),
        ("fear_greed", None, 99.0, as_of + 1),  # poison
        ("active_addresses", "BTC", 900.0, 2_000),
        ("funding_rate", "BTC/USDT", 0.01, 3_000),
        ("funding_rate", "ETH/USDT", 0.05, 3_000),
    ]
    with database.session_factory.begin() as session:
        session.add_all(
            ResearchObservationRow(
                source="test",
                metric=metric,
                symbol=symbol,
                value=value,
                fetched_at=fetched_at,
                payload="{}",
            )
            for metric, symbol, value, fetched_at in observations
        )

    research = StoredMarketView(database.session_factory, as_of).research("BTC/USDT")
    assert [(item.metric, item.symbol, item.value) for item in research] == [
        ("active_addresses", "BTC", 900.0),
        ("fear_greed", None, 55.0),
        ("funding_rate", "BTC/USDT", 0.01),
    ]


def test_market_view_candles_are_the_window_at_as_of(database: Database) -> None:
    CandleStore(database.session_factory).insert_candles(synthetic_candles(10))
    view = StoredMarketView(database.session_factory, T0 + 5 * STEP)
    assert view.as_of == T0 + 5 * STEP
    assert view.candles("BTC/USDT", "5m", 250).open_time.tolist() == [
        T0 + index * STEP for index in range(5)
    ]
