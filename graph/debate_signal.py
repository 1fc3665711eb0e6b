"""The debate alone, bar by bar over a candle series: the walk-forward's third baseline.

Each bar's snapshot is computed over the decision's lookback window ending at that bar, and
the rule agents, debate and fusion of the decision path turn it into an action (with no
news or research: candle files carry none). Model-backed agents (settings.llm) are not
asked: a walk-forward over thousands of bars is the rules' baseline. Nothing is
re-implemented here.
"""

from agents.bear import bear_arguments
from agents.bull import bull_arguments
from agents.researcher import research_brief
from core.candles import CandleWindow
from core.decision import Abstained, Action
from core.market_features import market_snapshot
from core.settings import Settings
from graph.debate import run_debate
from graph.fusion import fuse

NO_SIGNAL = Abstained(reason="the debate alone: RL and sentiment left out")


def debate_actions(window: CandleWindow, settings: Settings, start: int) -> list[Action | None]:
    """The debate-only action at each bar from ``start`` on; None where no snapshot exists."""
    actions: list[Action | None] = []
    for end in range(start + 1, len(window) + 1):
        bars = window.part(max(0, end - settings.lookback_bars), end)
        try:
            snapshot = market_snapshot(bars, int(bars.open_time[-1]) + window.timeframe_ms)
        except ValueError:
            actions.append(None)
            continue
        brief = research_brief(snapshot, (), ())
        outcome = run_debate(
            bull_arguments(snapshot), bear_arguments(snapshot), brief, settings.debate
        )
        proposal = fuse(outcome.verdict, NO_SIGNAL, NO_SIGNAL, settings.fusion, settings.limits)
        actions.append(proposal.action)
    return actions
