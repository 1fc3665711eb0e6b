"""TradingEnv: one long-only position over a candle series, with the paper broker's costs.

At bar t the policy sees the features of the closed bar t and its book, and picks hold, buy
(go fully long) or sell (go flat). The trade fills at the next bar's open, paying the fee
and half-spread; the book is then marked at that bar's close. The reward is the change in
portfolio value (starting at 1) over the step, less a penalty per trade. An episode ends at
the end of the series (truncated) or once the value falls ``max_drawdown`` below its peak
(terminated).

The step reads only numpy arrays prepared at construction: no pandas, no indicator work.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import gymnasium
import numpy as np
from gymnasium import spaces

from core.candles import CandleWindow, FloatArray, IntArray
from core.decision import Action
from core.settings import Settings
from rl.features import market_feature_rows
from rl.observation import OBSERVATION_SIZE, FeatureScaling, Float32Array

ACTIONS: tuple[Action, ...] = ("hold", "buy", "sell")
HOLD, BUY, SELL = range(len(ACTIONS))


@dataclass(frozen=True)
class TradingCosts:
    """Per trade: ``fraction`` of the value traded (fee + half-spread) is paid; ``penalty``
    is subtracted from the reward on top (it shapes learning and costs nothing real)."""

    fraction: float
    penalty: float


def costs_of(settings: Settings) -> TradingCosts:
    """The paper broker's fee and half-spread per trade, and the training's trade penalty.

    (The paper broker's market impact depends on the order's share of the candle's traded
    value, which a fraction-of-equity env does not have: it is left out.)"""
    paper = settings.paper
    return TradingCosts(
        fraction=paper.taker_fee + paper.spread_fraction, penalty=settings.rl.trade_penalty
    )


@dataclass(frozen=True)
class MarketSeries:
    """A candle series' feature rows with the prices a trade fills and is marked at."""

    name: str
    rows: FloatArray  # (n, len(MARKET_FEATURES)), finite
    open: FloatArray
    close: FloatArray
    close_time: IntArray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @classmethod
    def from_window(
        cls, window: CandleWindow, sentiment: FloatArray | None = None
    ) -> "MarketSeries":
        """The series from its first bar with every feature defined (after the warm-up)."""
        rows = market_feature_rows(window, sentiment)
        defined = np.asarray(np.isfinite(rows).all(axis=1))
        start = int(np.argmax(defined))
        if not defined[start:].all():
            bar = start + int(np.argmin(defined[start:]))
            raise ValueError(
                f"{window.symbol} {window.timeframe}: features undefined at bar {bar} "
                "(a flat or corrupt stretch); clean the data first"
            )
        return cls.slice_of(window, rows, start, len(window))

    @classmethod
    def slice_of(
        cls, window: CandleWindow, rows: FloatArray, start: int, stop: int
    ) -> "MarketSeries":
        return cls(
            name=f"{window.symbol} {window.timeframe}",
            rows=rows[start:stop],
            open=window.open[start:stop],
            close=window.close[start:stop],
            close_time=window.open_time[start:stop] + window.timeframe_ms,
        )

    def part(self, start: int, stop: int) -> "MarketSeries":
        return MarketSeries(
            name=self.name,
            rows=self.rows[start:stop],
            open=self.open[start:stop],
            close=self.close[start:stop],
            close_time=self.close_time[start:stop],
        )


class TradingEnv(gymnasium.Env[Float32Array, int]):
    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own attribute)

    def __init__(
        self,
        series: Sequence[MarketSeries],
        scaling: FeatureScaling,
        costs: TradingCosts,
        max_drawdown: float,
    ) -> None:
        if not series or any(len(item) < 2 for item in series):
            raise ValueError("every series needs at least 2 bars (one step)")
        self.observation_space = spaces.Box(-np.inf, np.inf, (OBSERVATION_SIZE,), np.float32)
        self.action_space = cast(spaces.Space[int], spaces.Discrete(len(ACTIONS)))
        self._series = tuple(series)
        self._market = tuple(scaling.scale(item.rows).astype(np.float32) for item in series)
        self._costs = costs
        self._floor = 1.0 - max_drawdown
        self._select(0, 0)

    def _select(self, index: int, start: int) -> None:
        item = self._series[index]
        self._rows = self._market[index]
        self._open = item.open.tolist()
        self._close = item.close.tolist()
        self._last = len(item) - 1
        self._t = start
        self._position = 0.0
        self._basis = 0.0  # value paid into the open position, fee included
        self._value = 1.0
        self._peak = 1.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Float32Array, dict[str, Any]]:
        """A random series and start bar; ``options={"series": i, "start": t}`` pins them
        (evaluation runs a whole slice from its first bar)."""
        super().reset(seed=seed)
        options = options or {}
        index = int(options.get("series", self.np_random.integers(len(self._series))))
        last = len(self._series[index]) - 1
        start = int(options.get("start", self.np_random.integers(last)))
        self._select(index, start)
        return self._observation(), {"value": self._value}

    def step(self, action: int) -> tuple[Float32Array, float, bool, bool, dict[str, Any]]:
        t, position, value = self._t, self._position, self._value
        target = position if action == HOLD else 1.0 if action == BUY else 0.0
        fill_price, mark_price = self._open[t + 1], self._close[t + 1]
        if position:
            value *= fill_price / self._close[t]
        traded = target != position
        if traded:
            self._basis = value if target else 0.0
            value *= 1.0 - self._costs.fraction
            self._position = target
        if target:
            value *= mark_price / fill_price
        reward = value - self._value - (self._costs.penalty if traded else 0.0)
        self._value, self._t = value, t + 1
        self._peak = max(self._peak, value)
        terminated = value < self._peak * self._floor
        truncated = self._t == self._last
        return self._observation(), reward, terminated, truncated, {"value": value}

    def _observation(self) -> Float32Array:
        observation = np.empty(OBSERVATION_SIZE, dtype=np.float32)
        observation[:-2] = self._rows[self._t]
        observation[-2] = self._position
        observation[-1] = self._value / self._basis - 1.0 if self._position else 0.0
        return observation
