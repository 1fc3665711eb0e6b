"""Every backtest decision equals the one `sigmax decide` takes at the same as_of on the same
book: DecisionEngine (the compiled graph, candles read from the database, PaperBroker's
stored orders and fills, the stored control state) against the backtest's plain loop over
the series in memory with its in-memory broker and control state."""

from pathlib import Path

import torch
from conftest import shared_csv

from backtest.run import BacktestResult, decided_indices, run_backtest
from core.decision import Abstained, RLOpinion
from core.settings import RLSettings, Settings
from core.timeframes import parse_timestamp
from execution.paper import PaperBroker
from graph.engine import DecisionEngine
from ingestion.candle_file import parse_candle_file
from ingestion.importer import import_candle_file
from rl.env import costs_of
from rl.registry import MODELS_FOLDER, ModelRegistry
from rl.train import TrainingRequest, train_model
from storage.candles import CandleStore
from storage.engine import open_database

FILE, SYMBOL, TIMEFRAME = "XRP_USDT-5m.csv", "XRP/USDT", "5m"


def _equivalent(
    tmp_path: Path, settings: Settings, rows: int, start_ms: int | None
) -> BacktestResult:
    """Backtest the file's first ``rows`` candles from ``start_ms``, then decide every one of
    those bars with DecisionEngine on the same candles, stored, and compare the records."""
    path = shared_csv(FILE)
    series = parse_candle_file(path.read_bytes(), SYMBOL, TIMEFRAME, "import").candles
    series = series.part(0, rows)
    step = series.timeframe_ms
    as_ofs = [int(series.open_time[i]) + step for i in decided_indices(series, start_ms, None)]
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    result = run_backtest(series, settings, rl_model, start_ms=start_ms, keep=as_ofs)

    database = open_database(settings.resolved_database_url)
    (tmp_path / FILE).write_text("\n".join(path.read_text().splitlines()[: rows + 1]) + "\n")
    import_candle_file(CandleStore(database.session_factory), tmp_path / FILE, SYMBOL, TIMEFRAME)
    # The paper broker under the backtest broker's name: the records name their broker.
    engine = DecisionEngine(settings, database, PaperBroker(database, settings.paper, "backtest"))
    for as_of in as_ofs:
        decided = engine.decide(SYMBOL, TIMEFRAME, as_of, mode="backtest")
        assert decided.deterministic_json() == result.records[as_of].deterministic_json(), as_of
    database.dispose()
    return result


def test_every_backtest_decision_equals_the_engines_on_the_same_book(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    # 361 decisions: buys, fills, sells and a circuit-breaker pause among them.
    result = _equivalent(tmp_path, settings, 420, None)
    assert all(isinstance(record.signals.rl, Abstained) for record in result.records.values())
    actions = {(bar.action, bar.execution) for bar in result.bars}
    assert {("buy", "executed"), ("sell", "executed")} <= actions
    assert {fill.side for fill in result.fills} == {"buy", "sell"}
    assert any(bar.trips for bar in result.bars)
    assert any("control_state" in bar.failed_checks for bar in result.bars)


def test_equivalence_holds_with_an_rl_model_active(tmp_path: Path) -> None:
    """The policy's opinion, from the market features and the position, in both paths."""
    home = tmp_path / "home"
    train_until = parse_timestamp("2021-11-20T00:00:00Z")
    series = parse_candle_file(shared_csv(FILE).read_bytes(), SYMBOL, TIMEFRAME, "import").candles
    threads = torch.get_num_threads()
    model = train_model(
        TrainingRequest(
            windows=[series],
            train_until=train_until,
            timesteps=512,
            seed=11,
            settings=RLSettings(n_steps=128, batch_size=64),
            costs=costs_of(Settings()),
        )
    )
    torch.set_num_threads(threads)
    registry = ModelRegistry(home / MODELS_FOLDER)
    registry.add(model.model_id, model.files, model.meta)
    registry.activate(model.model_id)
    # Out of sample after train_until (the model saw the bar closing then): 240 decisions
    # with the policy's opinion.
    result = _equivalent(tmp_path, Settings(home=home), 1680, train_until + 300_000)
    assert len(result.records) == 240
    assert all(isinstance(record.signals.rl, RLOpinion) for record in result.records.values())
