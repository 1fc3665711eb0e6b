"""Every backtest decision equals the one `sigmax decide` takes at the same as_of on the same
book: DecisionEngine (the compiled graph, candles read from the database, PaperBroker's
stored orders and fills, the stored control state) against the backtest's plain loop over
the series in memory with its in-memory broker and control state."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_csv
from policy_helpers import active_policy

import api.cli  # noqa: F401  (api.cli_backtest is registered by, and imported after, it)
from api.cli_backtest import backtest_settings
from backtest.run import BacktestResult, decided_indices, run_backtest
from core.decision import Abstained, RLOpinion
from core.settings import Settings
from core.timeframes import parse_timestamp
from execution.paper import PaperBroker
from graph.builder import build_graph
from graph.engine import DecisionEngine
from graph.state import DecisionState
from ingestion.candle_file import parse_candle_file
from ingestion.importer import import_candle_file
from rl.registry import MODELS_FOLDER, ModelRegistry
from storage.candles import CandleStore
from storage.engine import Database, open_database

FILE, SYMBOL, TIMEFRAME = "XRP_USDT-5m.csv", "XRP/USDT", "5m"


class ResearchEngine(DecisionEngine):
    """`sigmax decide` as the research switch would have it: the compiled graph over the
    engine's own services with the auto-pause triggers left out (only a backtest offers the
    switch, so the engine has no option for it)."""

    def __init__(self, settings: Settings, database: Database, broker: PaperBroker) -> None:
        super().__init__(settings, database, broker)
        self._research_graph = build_graph(replace(self.services, triggers_enabled=False))

    async def run_steps(self, state: DecisionState) -> DecisionState:
        result: DecisionState = await self._research_graph.ainvoke(state)
        return result


def _equivalent(
    tmp_path: Path,
    settings: Settings,
    rows: int | None,
    start_ms: int | None,
    name: str = FILE,
    triggers: bool = True,
) -> BacktestResult:
    """Backtest the first ``rows`` candles of ``name`` (all with None) from ``start_ms``, then
    decide every one of those bars with DecisionEngine on the same candles, stored, and
    compare the records."""
    pair, timeframe = name.removesuffix(".csv").split("-")
    symbol = pair.replace("_", "/")
    path = shared_csv(name)
    series = parse_candle_file(path.read_bytes(), symbol, timeframe, "import").candles
    if rows is not None:
        series = series.part(0, rows)
    step = series.timeframe_ms
    as_ofs = [int(series.open_time[i]) + step for i in decided_indices(series, start_ms, None)]
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    result = run_backtest(
        series, settings, rl_model, start_ms=start_ms, keep=as_ofs, triggers=triggers
    )

    database = open_database(settings.resolved_database_url)
    if rows is not None:
        path = tmp_path / name
        path.write_text("\n".join(shared_csv(name).read_text().splitlines()[: rows + 1]) + "\n")
    import_candle_file(CandleStore(database.session_factory), path, symbol, timeframe)
    # The paper broker under the backtest broker's name: the records name their broker.
    broker = PaperBroker(database, settings.paper, "backtest")
    engine = (
        DecisionEngine(settings, database, broker)
        if triggers
        else ResearchEngine(settings, database, broker)
    )
    for as_of in as_ofs:
        decided = engine.decide(symbol, timeframe, as_of, mode="backtest")
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


def _gaps(result: BacktestResult) -> int:
    return int((np.diff(result.series.open_time) > result.series.timeframe_ms).sum())


def _with_gaps(tmp_path: Path, rows: int | None) -> None:
    """XRP/ETH 1m: minutes missing all through it, windows the data_gaps check refuses."""
    result = _equivalent(tmp_path, Settings(home=tmp_path / "home"), rows, None, "XRP_ETH-1m.csv")
    assert _gaps(result) > 0
    assert any("data_gaps" in bar.failed_checks for bar in result.bars)


def _with_costs(tmp_path: Path, rows: int | None) -> None:
    """ETH/BTC 5m at 0.25 % taker fee and 0.1 % half-spread, not paper's defaults."""
    settings = backtest_settings(Settings(home=tmp_path / "home"), "BTC", 0.0025, 0.001, None)
    result = _equivalent(tmp_path, settings, rows, None, "ETH_BTC-5m.csv")
    assert {fill.side for fill in result.fills} == {"buy", "sell"}
    series = result.series
    for fill in result.fills:
        assert fill.fee == pytest.approx(fill.quantity * fill.price * 0.0025)
        # Priced at the fill candle's open, moved against the order by at least the spread.
        candle = int(np.searchsorted(series.open_time, fill.filled_at - series.timeframe_ms))
        moved = fill.price / float(series.open[candle]) - 1.0
        assert (moved if fill.side == "buy" else -moved) >= 0.001 - 1e-12


def _triggers_off(tmp_path: Path, rows: int | None) -> None:
    """BTC/USDT 5m with --no-triggers: no trip, no pause, every trigger check saying so."""
    settings = Settings(home=tmp_path / "home")
    result = _equivalent(tmp_path, settings, rows, None, "BTC_USDT-5m.csv", triggers=False)
    assert {fill.side for fill in result.fills} == {"buy", "sell"}
    assert not any(bar.trips for bar in result.bars)
    assert result.control.changes == []


CASES = {"gaps": _with_gaps, "costs": _with_costs, "triggers off": _triggers_off}


@pytest.mark.parametrize("case", CASES)
def test_equivalence_holds_with_gaps_costs_and_triggers_off(tmp_path: Path, case: str) -> None:
    CASES[case](tmp_path, 420)  # 361 decisions each


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_equivalence_holds_over_each_whole_file(tmp_path: Path, case: str) -> None:
    CASES[case](tmp_path, None)


@pytest.mark.slow
def test_equivalence_holds_over_the_whole_default_file(tmp_path: Path) -> None:
    _equivalent(tmp_path, Settings(home=tmp_path / "home"), None, None)


def test_equivalence_holds_with_an_rl_model_active(tmp_path: Path) -> None:
    """The policy's opinion, from the market features and the position, in both paths."""
    home = tmp_path / "home"
    train_until = parse_timestamp("2021-11-20T00:00:00Z")
    series = parse_candle_file(shared_csv(FILE).read_bytes(), SYMBOL, TIMEFRAME, "import").candles
    active_policy(home, series, train_until, seed=11)
    # Out of sample after train_until (the model saw the bar closing then): 240 decisions
    # with the policy's opinion.
    result = _equivalent(tmp_path, Settings(home=home), 1680, train_until + 300_000)
    assert len(result.records) == 240
    assert all(isinstance(record.signals.rl, RLOpinion) for record in result.records.values())
