"""Every backtest decision equals the one `sigmax decide` takes at the same as_of on the same
book: DecisionEngine (the compiled graph, candles read from the database, PaperBroker's
stored orders and fills, the stored control state) against the backtest's plain loop over
the series in memory with its in-memory broker and control state."""

from pathlib import Path

from conftest import shared_csv

from backtest.run import Backtest, decided_indices, run_backtest
from core.decision import Abstained
from core.settings import Settings
from execution.paper import PaperBroker
from graph.engine import DecisionEngine
from ingestion.candle_file import parse_candle_file
from ingestion.importer import import_candle_file
from rl.registry import MODELS_FOLDER, ModelRegistry
from storage.candles import CandleStore
from storage.engine import open_database

FILE, SYMBOL, TIMEFRAME = "XRP_USDT-5m.csv", "XRP/USDT", "5m"
BARS = 420  # 361 decisions: buys, fills, sells and a circuit-breaker pause among them


def test_every_backtest_decision_equals_the_engines_on_the_same_book(tmp_path: Path) -> None:
    path = shared_csv(FILE)
    series = parse_candle_file(path.read_bytes(), SYMBOL, TIMEFRAME, "import").candles.part(0, BARS)
    settings = Settings(home=tmp_path / "home")
    as_ofs = [
        Backtest(series, settings, Abstained(reason="-")).as_of(index)
        for index in decided_indices(series, None, None)
    ]
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    assert isinstance(rl_model, Abstained)  # no model: the engine sees none either
    result = run_backtest(series, settings, rl_model, keep=as_ofs)

    database = open_database(settings.resolved_database_url)
    csv_rows = path.read_text().splitlines()[: BARS + 1]
    (tmp_path / FILE).write_text("\n".join(csv_rows) + "\n")
    import_candle_file(CandleStore(database.session_factory), tmp_path / FILE, SYMBOL, TIMEFRAME)
    # The paper broker under the backtest broker's name: the records name their broker.
    engine = DecisionEngine(settings, database, PaperBroker(database, settings.paper, "backtest"))

    for as_of in as_ofs:
        decided = engine.decide(SYMBOL, TIMEFRAME, as_of, mode="backtest")
        assert decided.deterministic_json() == result.records[as_of].deterministic_json(), as_of

    # The stretch exercised what it is meant to: orders, fills both ways, a pause.
    actions = {(bar.action, bar.execution) for bar in result.bars}
    assert {("buy", "executed"), ("sell", "executed")} <= actions
    assert {fill.side for fill in result.fills} == {"buy", "sell"}
    assert any(bar.trips for bar in result.bars)
    assert any("control_state" in bar.failed_checks for bar in result.bars)
    database.dispose()
