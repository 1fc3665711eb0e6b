"""The debate alone, bar by bar over a candle series: the walk-forward's third baseline.

Each bar's snapshot is computed over the decision's lookback window ending at that bar, and
the rule agents, debate and fusion of the decision path turn it into an action (with no
news or research: candle files carry none). Model-backed agents (settings.llm) are not
asked: a walk-forward over thousands of bars is the rules' baseline. Nothing is
re-implemented here: the bars with a full window are read off graph.market_plan (the
market-only stages a block of bars at a time, as a backtest reads them), the first ones
through the steps' own functions.
"""

from agents.bear import bear_arguments
from agents.bull import bull_arguments
from agents.researcher import research_brief
from core.candles import CandleWindow
from core.decision import Abstained, Action
from core.market_features import SnapshotBatch, market_snapshot
from core.settings import Settings
from graph.debate import run_debate
from graph.fusion import fuse, fuse_opinions, opinions_from
from graph.market_plan import MarketPlan

NO_SIGNAL = Abstained(reason="the debate alone: RL and sentiment left out")


def debate_actions(window: CandleWindow, settings: Settings, start: int) -> list[Action | None]:
    """The debate-only action at each bar from ``start`` on; None where no snapshot exists."""
    plan = MarketPlan(window, settings, SnapshotBatch(window, settings.lookback_bars), False)
    return [_action(window, settings, plan, index) for index in range(start, len(window))]


def _action(
    window: CandleWindow, settings: Settings, plan: MarketPlan, index: int
) -> Action | None:
    if index + 1 >= settings.lookback_bars:  # a full window: planned, or no snapshot
        located = plan.locate(index)
        if located is None:
            return None
        block, row = located
        debate = (block.score[row], block.confidence[row])
        fused = fuse_opinions(opinions_from(debate, None, None), settings.fusion, settings.limits)
        return "hold" if fused is None else fused.action
    bars = window.part(0, index + 1)
    try:
        snapshot = market_snapshot(bars, int(bars.open_time[-1]) + window.timeframe_ms)
    except ValueError:
        return None
    brief = research_brief(snapshot, (), ())
    outcome = run_debate(bull_arguments(snapshot), bear_arguments(snapshot), brief, settings.debate)
    proposal = fuse(outcome.verdict, NO_SIGNAL, NO_SIGNAL, settings.fusion, settings.limits)
    return proposal.action
