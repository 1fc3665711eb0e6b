"""Stored backtest runs: the data file's hash and each bar's exit signal round-trip, and runs
stored before migration 0009 (without either) keep reading back, with None for each."""

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from core.trading import FillView
from storage.backtests import BacktestRunSummary, BacktestStore
from storage.engine import create_engine_for, open_database
from storage.migrate import MIGRATIONS, current_revision

T0 = 1_609_459_200_000
STEP = 300_000


def _run(run_id: str, data_sha256: str | None) -> BacktestRunSummary:
    return BacktestRunSummary(
        id=run_id,
        created_at=T0 + 10 * STEP,
        symbol="XRP/USDT",
        timeframe="5m",
        data_file="/data/XRP_USDT-5m.csv",
        data_sha256=data_sha256,
        first_as_of=T0 + STEP,
        last_as_of=T0 + 2 * STEP,
        bars=2,
        triggers_enabled=True,
        engine_version="test",
        config_hash="c" * 64,
        seconds=0.5,
        bars_per_second=4.0,
        metrics={"total_return": -0.001},
    )


def _bar(as_of: int, action: str, exit_signal: str | None) -> dict[str, object]:
    return {
        "as_of": as_of,
        "close": 0.5,
        "proposal_action": action,
        "score": -0.4 if action == "sell" else 0.3,
        "confidence": 0.6,
        "verdict": "approved",
        "action": action,
        "size": 0.1,
        "failed_checks": (),
        "trips": (),
        "execution": "executed",
        "execution_reason": "order placed; it fills at the next candle's open",
        "order_id": f"run-{as_of}",
        "exit_signal": exit_signal,
        "equity": 10_000.0,
        "holding": action == "sell",
    }


def test_a_runs_data_hash_and_exit_signals_round_trip(database_url: str) -> None:
    database = open_database(database_url)
    store = BacktestStore(database)
    digest = "ab" * 32
    bars = [_bar(T0 + STEP, "buy", None), _bar(T0 + 2 * STEP, "sell", "debate")]
    fill = FillView("run-1", "XRP/USDT", "buy", 10.0, 0.5, 0.005, 0.0002, T0 + 2 * STEP)
    store.save(_run("new-run", digest), bars, [fill])
    stored = store.get("new-run")
    assert stored is not None
    assert stored.data_sha256 == digest
    assert [bar["exit_signal"] for bar in store.decisions("new-run")] == [None, "debate"]
    database.dispose()


def test_runs_stored_before_0009_read_back_without_hash_or_exit_signal(
    database_url: str,
) -> None:
    engine = create_engine_for(database_url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
        run = dict(vars(_run("old-run", None)))
        del run["data_sha256"]
        run["metrics"] = '{"total_return": -0.001}'
        connection.execute(
            sa.text(
                f"INSERT INTO backtest_runs ({', '.join(run)}) "
                f"VALUES ({', '.join(':' + name for name in run)})"
            ),
            run,
        )
        bar = _bar(T0 + STEP, "sell", None)
        del bar["exit_signal"]
        bar.update(run_id="old-run", failed_checks="[]", trips="[]")
        connection.execute(
            sa.text(
                f"INSERT INTO backtest_decisions ({', '.join(bar)}) "
                f"VALUES ({', '.join(':' + name for name in bar)})"
            ),
            bar,
        )
    engine.dispose()

    upgraded = open_database(database_url)
    try:
        assert current_revision(upgraded.engine) == "0009"
        store = BacktestStore(upgraded)
        stored = store.get("old-run")
        assert stored is not None
        assert stored.data_sha256 is None
        assert stored.metrics == {"total_return": -0.001}
        (decision,) = store.decisions("old-run")
        assert decision["exit_signal"] is None
        assert decision["action"] == "sell"
        assert [run.id for run in store.runs()] == ["old-run"]
    finally:
        upgraded.dispose()
