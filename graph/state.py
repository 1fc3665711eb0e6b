"""The graph's typed state. Parallel nodes write disjoint keys; timings merge by reducer."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, TypedDict, TypeVar

from agents.chat_backend import ChatBackend, TokenLedger
from core.candles import CandleWindow
from core.decision import (
    Abstained,
    ControlStateName,
    DebateSignal,
    Execution,
    Mode,
    ModelCall,
    Proposal,
    RLSignal,
    SafetyReport,
    SentimentSignal,
)
from core.evidence import Argument, ResearchBrief, Speaker
from core.market_features import market_snapshot
from core.market_view import BookSummary, MarketView, NewsItem, ResearchObservation
from core.settings import ModelRole, Settings
from core.snapshot import MarketSnapshot
from core.trading import FillView, PortfolioView
from execution.broker import Broker
from graph.debate import DebateOutcome
from rl.registry import ActiveModel
from safety.triggers import TriggerReport


@dataclass(frozen=True)
class DecisionRequest:
    decision_id: str
    symbol: str
    timeframe: str
    timeframe_ms: int
    as_of: int
    # None: `sim` when every candle read is simulated, else `replay` (see nodes.gather).
    mode: Mode | None
    # Whether an approved action is sent to the broker (False: decide-only).
    place_orders: bool
    # The chat-model tokens this decision has used: its budget is checked against it.
    tokens: TokenLedger = field(default_factory=TokenLedger, compare=False)


@dataclass(frozen=True)
class MarketInputs:
    """Everything read through the MarketView for one decision, and what could not be built."""

    window: CandleWindow
    mode: Mode
    snapshot: MarketSnapshot | None
    snapshot_error: str | None
    news: tuple[NewsItem, ...]
    research: tuple[ResearchObservation, ...]
    book: BookSummary | None  # the newest order-book summary within the staleness bound


@dataclass(frozen=True)
class ControlView:
    state: ControlStateName
    reason: str


@dataclass(frozen=True)
class BookInputs:
    """What the gate and the triggers need of the book, read once per decision."""

    portfolio: PortfolioView
    new_fills: tuple[FillView, ...]  # filled after the previous decision of the symbol
    previous_decision_at: int | None
    api_error_times: tuple[int, ...]  # within the error window before as_of


@dataclass(frozen=True)
class DecisionServices:
    """What the nodes reach outside the state; built once per process and passed down."""

    settings: Settings
    market_view: Callable[[int], MarketView]
    control: Callable[[str], ControlView]
    book: Callable[[DecisionRequest], BookInputs]
    broker: Broker
    # The registry's active RL model, loaded once per process, or why there is none.
    rl_model: ActiveModel | Abstained
    # The chat model behind each model-backed role; a role not here is the rules'.
    chat: Mapping[ModelRole, ChatBackend] = field(default_factory=dict)
    # False only in a research backtest (`sigmax backtest --no-triggers`): the auto-pause
    # triggers are left out of the gate, which records that they were.
    triggers_enabled: bool = True
    # The window's indicators: market_snapshot, or a backtest's SnapshotBatch.snapshot (the
    # same values, computed for many windows at once).
    snapshot: Callable[[CandleWindow, int], MarketSnapshot] = market_snapshot


Key = TypeVar("Key")
Value = TypeVar("Value")


def merge_dicts(left: dict[Key, Value], right: dict[Key, Value]) -> dict[Key, Value]:
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
    book: BookInputs
    triggers: TriggerReport
    safety: SafetyReport
    execution: Execution
    # The chat-model call behind each model-backed agent's turns (parallel agents add theirs).
    model_calls: Annotated[dict[Speaker, ModelCall], merge_dicts]
    timings_ms: Annotated[dict[str, float], merge_dicts]
