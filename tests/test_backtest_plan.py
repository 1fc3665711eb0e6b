"""A backtest decides most bars from its plan and the steps' rulings, without the words; the
bars it decides so must be, field for field, the bars the steps themselves decide. Each run
here is made twice on the same series: every bar through the steps (its full record kept),
and the default way — and every bar, every fill and every control change must be equal.
tests/test_backtest_equivalence.py shows the steps' bars are `sigmax decide`'s."""

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import shared_csv
from policy_helpers import active_policy

from backtest.market import poisoned
from backtest.run import BacktestResult, decided_indices, run_backtest
from core.candles import CandleWindow
from core.decision import Abstained
from core.market_features import SnapshotBatch
from core.settings import Settings
from core.timeframes import parse_timestamp
from graph.market_plan import MarketPlan
from ingestion.candle_file import parse_candle_file
from rl.registry import ActiveModel

NO_MODEL = Abstained(reason="no RL model in this test")


def _series(name: str, rows: int) -> CandleWindow:
    symbol = name.split("-")[0].replace("_", "/")
    timeframe = name.split("-")[1].removesuffix(".csv")
    path = shared_csv(name)
    return parse_candle_file(path.read_bytes(), symbol, timeframe, "import").candles.part(0, rows)


def _both_ways(
    series: CandleWindow,
    settings: Settings,
    triggers: bool = True,
    rl_model: ActiveModel | Abstained = NO_MODEL,
    start_ms: int | None = None,
) -> tuple[BacktestResult, BacktestResult]:
    every = [
        int(series.open_time[index]) + series.timeframe_ms
        for index in decided_indices(series, start_ms, None)
    ]
    runs = [
        run_backtest(
            series, settings, rl_model, keep=keep, triggers=triggers, run_id="r", start_ms=start_ms
        )
        for keep in (every, ())
    ]
    return runs[0], runs[1]


def _assert_same(steps: BacktestResult, planned: BacktestResult) -> None:
    assert len(planned.bars) == len(steps.bars)
    assert steps.planned_bars == 0
    # The first bars' windows are short of the lookback; nearly all the rest are planned.
    assert planned.planned_bars > 0.5 * len(planned.bars)
    for ours, theirs in zip(planned.bars, steps.bars, strict=True):
        assert ours == theirs, ours.as_of
    assert planned.fills == steps.fills
    assert planned.control.changes == steps.control.changes
    assert planned.broker.portfolio(planned.bars[-1].as_of) == steps.broker.portfolio(
        steps.bars[-1].as_of
    )


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("BTC_USDT-5m.csv", 1500),  # a plan of its own past the first block boundary
        ("XRP_ETH-1m.csv", 1200),  # real gaps: windows with missing candles
        ("XRP_USDT-5m.csv", 700),  # buys, fills, sells and a circuit-breaker pause
    ],
)
def test_planned_bars_are_the_steps_bars(name: str, rows: int) -> None:
    steps, planned = _both_ways(_series(name, rows), Settings())
    _assert_same(steps, planned)


def test_planned_bars_from_a_start_are_the_steps_bars() -> None:
    """From --from on: no indicators are computed for the windows before the first bar."""
    series = _series("BTC_USDT-5m.csv", 3000)
    start = int(series.open_time[1900]) + series.timeframe_ms
    steps, planned = _both_ways(series, Settings(), start_ms=start)
    assert planned.bars[0].as_of == start
    _assert_same(steps, planned)


def test_planned_bars_trade_and_trip_as_the_steps_do() -> None:
    """The run above on XRP/USDT holds what a plan must get right: orders sent and refused,
    fills, trips and the pauses they leave."""
    steps, planned = _both_ways(_series("XRP_USDT-5m.csv", 700), Settings())
    kinds = {(bar.action, bar.execution) for bar in planned.bars}
    assert {("buy", "executed"), ("sell", "executed"), ("sell", "not_executed")} <= kinds
    assert any(bar.trips for bar in planned.bars)
    assert any("control_state" in bar.failed_checks for bar in planned.bars)
    _assert_same(steps, planned)


def test_planned_bars_with_other_costs_profile_and_triggers_off() -> None:
    settings = Settings()
    settings = settings.model_copy(
        update={
            "paper": settings.paper.model_copy(
                update={"taker_fee": 0.004, "spread_fraction": 0.0025}
            ),
            "debate": settings.debate.model_copy(update={"rounds": 4, "early_stop_delta": 0.0}),
        }
    )
    series = _series("ETH_BTC-5m.csv", 900)
    for triggers in (True, False):
        steps, planned = _both_ways(series, settings, triggers)
        _assert_same(steps, planned)


def test_planned_bars_with_an_rl_model_are_the_steps_bars(tmp_path: Path) -> None:
    """The policy sees the plan's features and the book's position at every bar, as the
    rl step shows it them."""
    series = _series("XRP_USDT-5m.csv", 1999)
    train_until = parse_timestamp("2021-11-19T00:00:00Z")
    active = active_policy(tmp_path, series, train_until, seed=5)
    steps, planned = _both_ways(series, Settings(home=tmp_path), rl_model=active)
    _assert_same(steps, planned)
    asked = [bar for bar in planned.bars if bar.as_of > train_until]
    assert len(asked) > 500
    assert len({bar.score for bar in asked}) > 100  # the policy's opinion moves the score


def test_a_flat_stretch_is_not_planned_and_says_why() -> None:
    """Where an indicator is undefined (a market that never moved) the bar is not planned:
    the steps decide it and their record says the indicators are unavailable."""
    series = _series("BTC_USDT-5m.csv", 600)
    flat = series.close.copy()
    flat[:320] = flat[0]
    frozen = replace(
        series, open=flat, high=flat, low=flat, close=flat, volume=series.volume.copy()
    )
    plan = MarketPlan(frozen, Settings(), SnapshotBatch(frozen, 250), features=False)
    assert plan.locate(300) is None
    assert plan.locate(590) is not None
    steps, planned = _both_ways(frozen, Settings())
    _assert_same(steps, planned)
    assert "indicators" in planned.bars[0].failed_checks


def test_the_plan_reads_nothing_after_the_close_of_a_bar() -> None:
    """Poison test: a plan over the series with every candle not closed by a bar's as_of
    made absurd gives that bar exactly what the plan over the true series gives."""
    series = _series("BTC_USDT-5m.csv", 1400)
    settings = Settings()
    true_plan = MarketPlan(series, settings, SnapshotBatch(series, 250), features=True)
    for index in range(260, 1400, 97):
        as_of = int(series.open_time[index]) + series.timeframe_ms
        spoiled = poisoned(series, as_of)
        assert spoiled.close[index + 1 :].min() > series.close.max()  # the future is absurd
        spoiled_plan = MarketPlan(spoiled, settings, SnapshotBatch(spoiled, 250), features=True)
        true_row, spoiled_row = true_plan.locate(index), spoiled_plan.locate(index)
        assert true_row is not None
        assert spoiled_row is not None
        (block, row), (spoiled_block, spoiled_at) = true_row, spoiled_row
        assert row == spoiled_at
        for name in ("score", "confidence", "breaker_atr", "missing_bars"):
            assert getattr(spoiled_block, name)[row] == getattr(block, name)[row], name
        assert block.features is not None
        assert spoiled_block.features is not None
        assert spoiled_block.features[row].tobytes() == block.features[row].tobytes()
