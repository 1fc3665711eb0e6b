"""The graph's typed state. Parallel nodes write disjoint keys; timings merge by reducer."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypedDict

from core.candles import CandleWindow
from core.decision import (
    ControlStateName,
    DebateSignal,
    Proposal,
    RLSignal,
    SafetyReport,
    SentimentSignal,
)
from core.evidence import Argument, ResearchBrief
from core.market_view import MarketView, NewsItem, ResearchObservation
from core.settings import Settings
from core.snapshot import MarketSnapshot
from graph.debate import DebateOutcome


@dataclass(frozen=True)
class DecisionRequest:
    symbol: str
    timeframe: str
    timeframe_ms: int
    as_of: int


@dataclass(frozen=True)
class MarketInputs:
    """Everything read through the MarketView for one decision, and what could not be built."""

    window: CandleWindow
    snapshot: MarketSnapshot | None
    snapshot_error: str | None
    news: tuple[NewsItem, ...]
    research: tuple[ResearchObservation, ...]


@dataclass(frozen=True)
class ControlView:
    state: ControlStateName
    reason: str


@dataclass(frozen=True)
class PositionView:
    fraction: float
    source: str


@dataclass(frozen=True)
class DecisionServices:
    """What the nodes reach outside the state; built once per process and passed down."""

    settings: Settings
    market_view: Callable[[int], MarketView]
    control: Callable[[str], ControlView]
    position: Callable[[str], PositionView]


def merge_timings(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    return {**left, **right}


class DecisionState(TypedDict, total=False):
    request: DecisionRequest
    market: MarketInputs
    bull: tuple[Argument, ...]
    bear: tuple[Argument, ...]
    brief: ResearchBrief
    debate: DebateOutcome | None
    debate_signal: DebateSignal
    rl: RLSignal
    sentiment: SentimentSignal
    proposal: Proposal
    safety: SafetyReport
    timings_ms: Annotated[dict[str, float], merge_timings]
