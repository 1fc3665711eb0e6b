"""The backtest's metrics against figures worked out by hand, and against its own book."""

import math
from pathlib import Path

import pytest
from conftest import shared_csv

from backtest.metrics import Drawdown, ExitRow, TradeOutcome, compute_metrics
from backtest.run import run_backtest
from backtest.summary import metrics_of, trades_of
from core.settings import Settings
from ingestion.candle_file import parse_candle_file
from rl.registry import MODELS_FOLDER, ModelRegistry

DAY = 86_400_000
# Six daily bars. Equity 100 → 120 → 90 → 90 → 108 → 129.6: returns +20%, -25%, 0, +20%, +20%.
TIMES = [day * DAY for day in range(6)]
EQUITY = [100.0, 120.0, 90.0, 90.0, 108.0, 129.6]
HOLDING = [False, True, True, False, True, True]
CLOSES = [10.0, 12.0, 9.0, 9.0, 10.8, 13.0]
TRADES = [
    TradeOutcome(1 * DAY, 2 * DAY, 20.0, "sell signal (debate)"),
    TradeOutcome(2 * DAY, 3 * DAY, -10.0, "sell signal (rl)"),
    TradeOutcome(4 * DAY, 5 * DAY, 5.0, "sell signal (debate)"),
]
FEES = [0.5, 0.25, 0.125]


def test_metrics_match_the_hand_computed_fixture() -> None:
    metrics = compute_metrics(TIMES, EQUITY, HOLDING, CLOSES, TRADES, FEES)
    assert metrics.total_return == pytest.approx(0.296)  # 129.6 / 100 - 1
    # Five days of a 365-day year: 1.296 ** 73 - 1.
    assert metrics.cagr == pytest.approx(1.296**73 - 1.0)
    # Mean return 0.35 / 5 = 0.07; deviations 0.13, -0.32, -0.07, 0.13, 0.13, their squares
    # sum to 0.158, over n - 1 = 4: variance 0.0395. A daily bar: 365 a year.
    assert metrics.sharpe == pytest.approx(0.07 / math.sqrt(0.0395) * math.sqrt(365))
    # Downside: only -0.25 counts, 0.0625 / 5 = 0.0125.
    assert metrics.sortino == pytest.approx(0.07 / math.sqrt(0.0125) * math.sqrt(365))
    # Peak 120 on day 1, trough 90 on day 2 (-25 %), regained on day 5 (129.6 ≥ 120).
    drawdown = metrics.max_drawdown
    assert drawdown.depth == pytest.approx(-0.25)
    assert (drawdown.peak_at, drawdown.trough_at, drawdown.recovered_at) == (DAY, 2 * DAY, 5 * DAY)
    assert metrics.calmar == pytest.approx((1.296**73 - 1.0) / 0.25)
    assert metrics.win_rate == pytest.approx(2 / 3)
    assert metrics.profit_factor == pytest.approx(2.5)  # (20 + 5) / 10
    assert metrics.expectancy == pytest.approx(5.0)  # (20 - 10 + 5) / 3
    assert metrics.exposure == pytest.approx(4 / 6)
    assert metrics.trade_count == 3
    assert metrics.fees_paid == pytest.approx(0.875)
    assert metrics.buy_and_hold_return == pytest.approx(0.3)  # 13 / 10 - 1
    assert metrics.exits == (
        ExitRow("sell signal (debate)", trades=2, wins=2, total_pnl=25.0, mean_pnl=12.5),
        ExitRow("sell signal (rl)", trades=1, wins=0, total_pnl=-10.0, mean_pnl=-10.0),
    )


# Five 5m bars from 2021-01-01 with the 00:15 candle missing (a gap, as real files have).
# Equity 100 → 102 → 99.96 → 99.96 → 101.9592: returns +2 %, -2 %, 0, +2 %.
MINUTE = 60_000
T0 = 1_609_459_200_000
INTRADAY_TIMES = [T0 + step * 5 * MINUTE for step in (0, 1, 2, 4, 5)]
INTRADAY_EQUITY = [100.0, 102.0, 99.96, 99.96, 101.9592]
INTRADAY_CLOSES = [2.0, 2.04, 1.9992, 2.1, 2.5]
WINNERS = [
    TradeOutcome(INTRADAY_TIMES[1], INTRADAY_TIMES[3], 2.0, "sell signal (debate)"),
    TradeOutcome(INTRADAY_TIMES[4], INTRADAY_TIMES[4], 0.5, "sell signal (rl)"),
]


def test_intraday_bars_with_a_gap_are_annualised_by_the_bars_present() -> None:
    metrics = compute_metrics(
        INTRADAY_TIMES, INTRADAY_EQUITY, [False, True, True, False, True], INTRADAY_CLOSES,
        WINNERS, [0.1, 0.1, 0.1, 0.1],
    )  # fmt: skip
    # Four returns over 25 minutes: 4 × 525,600 / 25 = 84,096 a year, not 5m's 105,120.
    # Mean 0.02 / 4 = 0.005; deviations 0.015, -0.025, -0.005, 0.015, squares summing to
    # 0.0011, over n - 1 = 3.
    assert metrics.sharpe == pytest.approx(0.005 / math.sqrt(0.0011 / 3) * math.sqrt(84_096))
    # Downside: only -0.02 counts, 0.0004 / 4 = 0.0001, its root 0.01.
    assert metrics.sortino == pytest.approx(0.005 / 0.01 * math.sqrt(84_096))
    # 25 minutes are 1 / 21,024 of a year.
    assert metrics.cagr == pytest.approx(1.019592**21_024 - 1.0)
    drawdown = metrics.max_drawdown
    assert drawdown.depth == pytest.approx(-0.02)  # 102 → 99.96, never regained
    assert (drawdown.peak_at, drawdown.trough_at, drawdown.recovered_at) == (
        INTRADAY_TIMES[1],
        INTRADAY_TIMES[2],
        None,
    )
    # Buy and hold: the first decided close to the last, 2.0 → 2.5, no fees taken off.
    assert metrics.buy_and_hold_return == pytest.approx(0.25)
    assert metrics.fees_paid == pytest.approx(0.4)
    # Every trade won: no losses to divide by, so no profit factor; the win rate says why.
    assert metrics.profit_factor is None
    assert metrics.win_rate == 1.0
    assert metrics.expectancy == pytest.approx(1.25)

    # The same curve without the gap: the 5m count itself, √(105,120 / 84,096) = √1.25 more.
    gap_free = [T0 + step * 5 * MINUTE for step in range(5)]
    dense = compute_metrics(gap_free, INTRADAY_EQUITY, [True] * 5, INTRADAY_CLOSES, [], [])
    assert dense.sharpe == pytest.approx(0.005 / math.sqrt(0.0011 / 3) * math.sqrt(105_120))
    assert dense.sharpe is not None
    assert metrics.sharpe is not None
    assert dense.sharpe / metrics.sharpe == pytest.approx(math.sqrt(1.25))


def test_a_span_too_short_to_compound_for_a_year_has_no_cagr() -> None:
    # +50 % in 10 minutes compounded 52,560 times overflows a float: no CAGR, no Calmar.
    times = [T0, T0 + 5 * MINUTE, T0 + 10 * MINUTE]
    metrics = compute_metrics(times, [100.0, 90.0, 150.0], [True] * 3, [1.0] * 3, [], [])
    assert metrics.total_return == pytest.approx(0.5)
    assert (metrics.cagr, metrics.calmar) == (None, None)
    assert metrics.max_drawdown.depth == pytest.approx(-0.1)


def test_undefined_ratios_are_none_not_a_made_up_number() -> None:
    flat = compute_metrics([0, DAY, 2 * DAY], [100.0] * 3, [False] * 3, [1.0] * 3, [], [])
    assert flat.total_return == 0.0
    assert (flat.sharpe, flat.sortino, flat.calmar) == (None, None, None)
    assert (flat.win_rate, flat.profit_factor, flat.expectancy) == (None, None, None)
    assert flat.max_drawdown == Drawdown(0.0, None, None, None)
    # Never regained: no recovery date.
    falling = compute_metrics([0, DAY], [100.0, 80.0], [True] * 2, [1.0] * 2, [], [])
    assert falling.max_drawdown.depth == pytest.approx(-0.2)
    assert (falling.max_drawdown.trough_at, falling.max_drawdown.recovered_at) == (DAY, None)
    with pytest.raises(ValueError, match="one equity, holding and close per decided bar"):
        compute_metrics([0], [1.0, 2.0], [True], [1.0], [], [])


def test_a_runs_trades_and_fees_add_up_to_its_equity(tmp_path: Path) -> None:
    path = shared_csv("XRP_USDT-5m.csv")
    series = parse_candle_file(path.read_bytes(), "XRP/USDT", "5m", "import").candles
    settings = Settings(home=tmp_path / "home")
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    result = run_backtest(series.part(0, 800), settings, rl_model)
    metrics = metrics_of(result)
    trades = trades_of(result)
    assert metrics.trade_count == len(trades) > 0
    assert metrics.fees_paid == pytest.approx(sum(fill.fee for fill in result.fills))
    # The run ends flat: what the trades made (fees included) is the whole change of equity.
    assert not result.bars[-1].holding
    change = metrics.end_equity - metrics.start_equity
    assert math.fsum(trade.pnl for trade in trades) == pytest.approx(change, abs=1e-9)
    assert metrics.start_equity == settings.paper.starting_balances["USDT"]
    first, last = result.bars[0].close, result.bars[-1].close
    assert metrics.buy_and_hold_return == pytest.approx(last / first - 1.0)
