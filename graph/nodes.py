"""The decision path's steps as plain functions: state and services in, a partial state out.

The StateGraph (graph/builder.py) wires them; the benchmark calls them directly to show
what the graph machinery itself costs.
"""

from agents.bear import bear_arguments
from agents.bull import bull_arguments
from agents.researcher import research_brief
from core.decision import Abstained, RLSignal, SentimentSignal
from core.evidence import ResearchBrief
from core.market_features import market_snapshot
from core.timeframes import format_timestamp
from graph.debate import run_debate
from graph.fusion import fuse
from graph.state import DecisionServices, DecisionState, MarketInputs
from safety.gate import GateInputs, MarketDataStatus, evaluate

NEWS_LIMIT = 200


def gather(state: DecisionState, services: DecisionServices) -> DecisionState:
    """Read every input through one MarketView bound to as_of, and compute the indicators."""
    request = state["request"]
    view = services.market_view(request.as_of)
    window = view.candles(request.symbol, request.timeframe, services.settings.lookback_bars)
    snapshot, snapshot_error = None, None
    try:
        snapshot = market_snapshot(window, request.as_of)
    except ValueError as error:  # InsufficientDataError included: both mean "cannot compute"
        snapshot_error = f"indicators unavailable: {error}"
    market = MarketInputs(
        window=window,
        snapshot=snapshot,
        snapshot_error=snapshot_error,
        news=tuple(view.news(request.symbol, NEWS_LIMIT)),
        research=tuple(view.research(request.symbol)),
    )
    return {"market": market}


def bull(state: DecisionState, _services: DecisionServices) -> DecisionState:
    snapshot = state["market"].snapshot
    return {"bull": bull_arguments(snapshot) if snapshot else ()}


def bear(state: DecisionState, _services: DecisionServices) -> DecisionState:
    snapshot = state["market"].snapshot
    return {"bear": bear_arguments(snapshot) if snapshot else ()}


def researcher(state: DecisionState, _services: DecisionServices) -> DecisionState:
    market = state["market"]
    if market.snapshot is None:
        missing = (market.snapshot_error or "indicators unavailable",)
        return {"brief": ResearchBrief(items=(), missing=missing, confidence_factor=0.0)}
    return {"brief": research_brief(market.snapshot, market.news, market.research)}


def debate(state: DecisionState, services: DecisionServices) -> DecisionState:
    market = state["market"]
    if market.snapshot is None:
        reason = market.snapshot_error or "indicators unavailable"
        return {"debate": None, "debate_signal": Abstained(reason=f"no debate: {reason}")}
    outcome = run_debate(state["bull"], state["bear"], state["brief"], services.settings.debate)
    return {"debate": outcome, "debate_signal": outcome.verdict}


def rl(_state: DecisionState, _services: DecisionServices) -> DecisionState:
    signal: RLSignal = Abstained(
        reason="no RL policy: this engine version has no trained model registry"
    )
    return {"rl": signal}


def sentiment(state: DecisionState, _services: DecisionServices) -> DecisionState:
    request, market = state["request"], state["market"]
    until = format_timestamp(request.as_of)
    signal: SentimentSignal
    if not market.news:
        signal = Abstained(reason=f"no news stored for {request.symbol} up to {until}")
    else:
        signal = Abstained(
            reason=(
                f"{len(market.news)} news items stored up to {until}, but this engine "
                "version has no sentiment model to score them"
            )
        )
    return {"sentiment": signal}


def fusion(state: DecisionState, services: DecisionServices) -> DecisionState:
    settings = services.settings
    proposal = fuse(
        state["debate_signal"], state["rl"], state["sentiment"], settings.fusion, settings.limits
    )
    return {"proposal": proposal}


def gate(state: DecisionState, services: DecisionServices) -> DecisionState:
    request, market = state["request"], state["market"]
    control = services.control(request.symbol)
    position = services.position(request.symbol)
    data = MarketDataStatus(
        as_of=request.as_of,
        timeframe_ms=request.timeframe_ms,
        last_close_time=market.window.last_close_time,
        missing_bars=market.window.missing_bars(),
        snapshot_error=market.snapshot_error,
    )
    inputs = GateInputs(
        proposal=state["proposal"],
        control_state=control.state,
        control_reason=control.reason,
        data=data,
        position_fraction=position.fraction,
        position_source=position.source,
    )
    return {"safety": evaluate(inputs, services.settings.limits)}
