"""Walk-forward: train on window k, judge on window k+1, for every k, per candle series.

The series (after the features' warm-up) is cut into equal windows. A model is trained on
window k alone (its own newest part held out for validation) and judged on window k+1,
which it never saw, beside buy-and-hold, staying flat and the debate alone, all through
the same env with the same costs.
"""

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core.candles import CandleWindow
from core.decision import Action
from core.settings import RLSettings
from rl.env import BUY, HOLD, SELL, MarketSeries, TradingCosts
from rl.features import market_feature_rows
from rl.metrics import Chooser, Performance, fixed_chooser, judge, policy_chooser
from rl.observation import Float32Array
from rl.train import TrainingRequest, train_model

STRATEGIES = ("rl", "buy_and_hold", "flat", "debate")
_ACTION_INDEX = {"buy": BUY, "sell": SELL, "hold": HOLD}


@dataclass(frozen=True)
class WindowResult:
    series: str
    window: int  # the test window's number (1-based: window 0 is only ever trained on)
    train_span: tuple[int, int]  # close times, epoch ms
    test_span: tuple[int, int]
    model_id: str
    performance: dict[str, Performance]
    curves: dict[str, list[float]]


def window_bounds(length: int, start: int, windows: int) -> list[tuple[int, int]]:
    edges = np.linspace(start, length, windows + 1).astype(int).tolist()
    return list(itertools.pairwise(edges))


def walk_forward(
    window: CandleWindow,
    debate: Sequence[Action | None],
    settings: RLSettings,
    costs: TradingCosts,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> list[WindowResult]:
    """``debate``: the debate-only action per candle of ``window`` (None where it had none)."""
    if len(debate) != len(window):
        raise ValueError(f"{len(debate)} debate actions for {len(window)} candles")
    rows = market_feature_rows(window)
    start = int(np.argmax(np.isfinite(rows).all(axis=1)))
    bounds = window_bounds(len(window), start, settings.walk_forward_windows)
    results = []
    for number, ((train_from, train_to), (test_from, test_to)) in enumerate(
        itertools.pairwise(bounds), start=1
    ):
        if progress:
            progress(f"{window.symbol} {window.timeframe}: window {number}")
        # The training window starts its own warm-up: it sees nothing of earlier windows.
        train_window = window.part(train_from, train_to)
        trained = train_model(
            TrainingRequest(
                windows=[train_window],
                train_until=int(train_window.open_time[-1]) + window.timeframe_ms,
                timesteps=settings.walk_forward_timesteps,
                seed=seed,
                settings=settings,
                costs=costs,
            )
        )
        test = MarketSeries.slice_of(window, rows, test_from, test_to)
        policy = trained.policy
        choosers = {
            "rl": policy_chooser(policy.probabilities),
            "buy_and_hold": fixed_chooser(BUY),
            "flat": fixed_chooser(HOLD),
            "debate": _scripted(debate[test_from:test_to]),
        }
        judged = {
            name: judge(test, policy.scaling, costs, choose) for name, choose in choosers.items()
        }
        results.append(
            WindowResult(
                series=f"{window.symbol} {window.timeframe}",
                window=number,
                train_span=(
                    int(train_window.open_time[0]) + window.timeframe_ms,
                    int(train_window.open_time[-1]) + window.timeframe_ms,
                ),
                test_span=(int(test.close_time[0]), int(test.close_time[-1])),
                model_id=trained.model_id,
                performance={name: item[0] for name, item in judged.items()},
                curves={name: item[1] for name, item in judged.items()},
            )
        )
    return results


def _scripted(actions: Sequence[Action | None]) -> Chooser:
    """The given action at each bar; hold where there was none (the decision would hold)."""

    def choose(bar: int, _observation: Float32Array) -> int:
        action = actions[bar]
        return HOLD if action is None else _ACTION_INDEX[action]

    return choose
