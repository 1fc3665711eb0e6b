"""A backtest's figures: returns, risk, trades, costs, buy-and-hold, and trades by exit reason.

Pure functions of the equity curve (the quote currency's equity at each decided bar's close,
before that bar's order fills), the closed trades and the fills: nothing re-runs a decision.

Sharpe and Sortino are annualised by the bars the run actually decided per year of its span,
over the project's 365-day year (crypto trades every day): (bars - 1) × YEAR / (last as_of -
first as_of). On a file without gaps that is the timeframe's own count (105,120 for 5m); on
a file with gaps it is fewer, because a return that spans a gap is one observation covering
several candles' time — scaling it by the nominal count would overstate the ratio by
√(nominal / present). Buy-and-hold is the first decided bar's close to the last decided
bar's close, without fees or slippage: the market's own move over the span the path traded.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from rl.metrics import YEAR_MS


@dataclass(frozen=True)
class Drawdown:
    depth: float  # ≤ 0: the deepest fall of equity below its running peak, as a fraction
    peak_at: int | None  # when that peak was set (epoch ms); None without a fall
    trough_at: int | None
    recovered_at: int | None  # when equity first regained the peak; None if it never did


@dataclass(frozen=True)
class TradeOutcome:
    """A closed trade and why it closed (the exit's reason: which signal sold)."""

    opened_at: int
    closed_at: int
    pnl: float  # quote currency, fees included
    exit_reason: str


@dataclass(frozen=True)
class ExitRow:
    reason: str
    trades: int
    wins: int
    total_pnl: float
    mean_pnl: float


@dataclass(frozen=True)
class Metrics:
    start_equity: float
    end_equity: float
    total_return: float
    # None over a zero span, a wiped-out account, or a span so short that compounding its
    # return for a year overflows a float (no figure a reader could use).
    cagr: float | None
    sharpe: float | None  # None where returns never vary
    sortino: float | None  # None without a losing bar
    max_drawdown: Drawdown
    calmar: float | None  # None without a drawdown
    win_rate: float | None  # None without closed trades
    # Gross gains over gross losses; None without a losing trade — every trade won (see
    # win_rate 1.0) or none closed (win_rate None): x / 0 has no value JSON can carry.
    profit_factor: float | None
    expectancy: float | None  # mean PnL per closed trade, quote currency
    exposure: float  # share of decided bars with a position held
    trade_count: int
    fees_paid: float
    buy_and_hold_return: float  # first decided close → last decided close, no costs
    exits: tuple[ExitRow, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_metrics(
    times: Sequence[int],
    equity: Sequence[float],
    holding: Sequence[bool],
    closes: Sequence[float],
    trades: Sequence[TradeOutcome],
    fees: Sequence[float],
) -> Metrics:
    """``times``, ``equity``, ``holding`` and ``closes`` per decided bar, oldest first."""
    if not times or not len(times) == len(equity) == len(holding) == len(closes):
        raise ValueError("metrics need one equity, holding and close per decided bar, and a bar")
    start, end = equity[0], equity[-1]
    total_return = end / start - 1.0
    span_ms = times[-1] - times[0]
    cagr = _cagr(end / start, span_ms)
    returns = [now / before - 1.0 for before, now in pairwise(equity)]
    # Integers divided once: exactly YEAR_MS / timeframe on a file without gaps.
    per_year = len(returns) * YEAR_MS / span_ms if span_ms > 0 else 0.0
    drawdown = max_drawdown(times, equity)
    calmar = cagr / -drawdown.depth if cagr is not None and drawdown.depth < 0 else None
    pnls = [trade.pnl for trade in trades]
    gains = math.fsum(pnl for pnl in pnls if pnl > 0)
    losses = -math.fsum(pnl for pnl in pnls if pnl < 0)
    return Metrics(
        start_equity=start,
        end_equity=end,
        total_return=total_return,
        cagr=cagr,
        sharpe=_sharpe(returns, per_year),
        sortino=_sortino(returns, per_year),
        max_drawdown=drawdown,
        calmar=calmar,
        win_rate=sum(1 for pnl in pnls if pnl > 0) / len(pnls) if pnls else None,
        profit_factor=gains / losses if losses > 0 else None,
        expectancy=math.fsum(pnls) / len(pnls) if pnls else None,
        exposure=sum(1 for held in holding if held) / len(holding),
        trade_count=len(trades),
        fees_paid=math.fsum(fees),
        buy_and_hold_return=closes[-1] / closes[0] - 1.0,
        exits=exit_table(trades),
    )


def _cagr(growth: float, span_ms: int) -> float | None:
    if span_ms <= 0 or growth <= 0:
        return None
    try:
        return float(growth ** (YEAR_MS / span_ms)) - 1.0
    except OverflowError:
        return None


def _sharpe(returns: Sequence[float], per_year: float) -> float | None:
    """Mean over sample standard deviation (n - 1) of the per-bar returns, × √(bars a year)."""
    if len(returns) < 2:
        return None
    mean = math.fsum(returns) / len(returns)
    variance = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance <= 0.0:
        return None
    return mean / math.sqrt(variance) * math.sqrt(per_year)


def _sortino(returns: Sequence[float], per_year: float) -> float | None:
    """Mean over the downside deviation √(mean of min(r, 0)²), × √(bars a year)."""
    if not returns:
        return None
    downside = math.fsum(min(r, 0.0) ** 2 for r in returns) / len(returns)
    if downside <= 0.0:
        return None
    return math.fsum(returns) / len(returns) / math.sqrt(downside) * math.sqrt(per_year)


def max_drawdown(times: Sequence[int], equity: Sequence[float]) -> Drawdown:
    """The deepest fall below a running peak, with when it peaked, bottomed and recovered."""
    peak_index, depth, worst = 0, 0.0, None
    for index, value in enumerate(equity):
        if value > equity[peak_index]:
            peak_index = index
        fall = value / equity[peak_index] - 1.0
        if fall < depth:
            depth, worst = fall, (peak_index, index)
    if worst is None:
        return Drawdown(depth=0.0, peak_at=None, trough_at=None, recovered_at=None)
    peak, trough = worst
    recovered = next(
        (times[i] for i in range(trough + 1, len(equity)) if equity[i] >= equity[peak]), None
    )
    return Drawdown(depth, times[peak], times[trough], recovered)


def exit_table(trades: Sequence[TradeOutcome]) -> tuple[ExitRow, ...]:
    """Closed trades grouped by exit reason, in reason order."""
    rows = []
    for reason in sorted({trade.exit_reason for trade in trades}):
        pnls = [trade.pnl for trade in trades if trade.exit_reason == reason]
        total = math.fsum(pnls)
        wins = sum(1 for pnl in pnls if pnl > 0)
        rows.append(ExitRow(reason, len(pnls), wins, total, total / len(pnls)))
    return tuple(rows)
