"""Running a chooser of actions through the TradingEnv over a whole slice, and judging it.

The policy, buy-and-hold, flat and the debate alone all go through the same env (same
fills, same costs), so their figures differ only by the actions taken.
"""

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from core.candles import FloatArray
from rl.env import MarketSeries, TradingCosts, TradingEnv
from rl.observation import FeatureScaling, Float32Array

YEAR_MS = 365 * 24 * 3_600_000

# (bar index in the slice, observation) → action index
Chooser = Callable[[int, Float32Array], int]


def policy_chooser(probabilities: Callable[[Float32Array], FloatArray]) -> Chooser:
    """The policy's most probable action, as the decision path would take it."""

    def choose(_bar: int, observation: Float32Array) -> int:
        return int(np.argmax(probabilities(observation)))

    return choose


def fixed_chooser(action: int) -> Chooser:
    def choose(_bar: int, _observation: Float32Array) -> int:
        return action

    return choose


@dataclass(frozen=True)
class Performance:
    total_return: float
    sharpe: float  # annualised from per-bar returns
    max_drawdown: float
    trades: int

    def as_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items()}


def equity_curve(
    series: MarketSeries, scaling: FeatureScaling, costs: TradingCosts, choose: Chooser
) -> tuple[list[float], int]:
    """Portfolio value at each bar's close (1.0 at the first) and the number of trades.

    No drawdown stop: a slice is judged to its end."""
    env = TradingEnv([series], scaling, costs, max_drawdown=1.0)
    observation, _ = env.reset(options={"series": 0, "start": 0})
    values, trades, position = [1.0], 0, 0.0
    for bar in range(len(series) - 1):
        observation, _, _, _, info = env.step(choose(bar, observation))
        trades += int(observation[-2] != position)
        position = float(observation[-2])
        values.append(float(info["value"]))
    return values, trades


def performance(values: list[float], trades: int, bar_ms: int) -> Performance:
    curve = np.asarray(values)
    returns = curve[1:] / curve[:-1] - 1.0
    spread = float(returns.std()) if len(returns) > 1 else 0.0
    sharpe = float(returns.mean()) / spread * math.sqrt(YEAR_MS / bar_ms) if spread > 0 else 0.0
    drawdown = float((1.0 - curve / np.maximum.accumulate(curve)).max())
    return Performance(
        total_return=float(curve[-1] - 1.0), sharpe=sharpe, max_drawdown=drawdown, trades=trades
    )


def judge(
    series: MarketSeries, scaling: FeatureScaling, costs: TradingCosts, choose: Chooser
) -> tuple[Performance, list[float]]:
    values, trades = equity_curve(series, scaling, costs, choose)
    bar_ms = int(np.median(np.diff(series.close_time))) if len(series) > 1 else YEAR_MS
    return performance(values, trades, bar_ms), values
