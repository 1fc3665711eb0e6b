"""The decision path's steps as plain functions: state and services in, a partial state out.

The StateGraph (graph/builder.py) wires them; the benchmark calls them directly to show
what the graph machinery itself costs.
"""

from agents.bear import BEAR
from agents.bull import BULL
from agents.model_agents import model_arguments, model_brief, model_ruling
from agents.researcher import research_brief
from agents.rules import Side, arguments_for
from core.candles import CandleWindow
from core.decision import Abstained, Execution, Mode, ModelCall, SentimentSignal
from core.evidence import Argument, ResearchBrief, Speaker
from core.market_features import with_book
from core.sentiment import decayed_sentiment
from core.timeframes import format_timestamp
from core.trading import OrderRequest, PortfolioView, quote_of
from graph.debate import run_debate, with_model_ruling
from graph.fusion import fuse
from graph.state import DecisionServices, DecisionState, MarketInputs
from rl.features import PARITY_LOOKBACK_BARS, snapshot_feature_row
from rl.observation import build_observation
from safety.gate import GateInputs, MarketDataStatus, evaluate
from safety.triggers import DailyEquity, TriggerInputs, evaluate_triggers, triggers_off

NEWS_LIMIT = 200


def gather(state: DecisionState, services: DecisionServices) -> DecisionState:
    """Read every input through one MarketView bound to as_of, and compute the indicators."""
    request = state["request"]
    view = services.market_view(request.as_of)
    window = view.candles(request.symbol, request.timeframe, services.settings.lookback_bars)
    book = view.book(request.symbol)
    snapshot, snapshot_error = None, None
    try:
        snapshot = with_book(services.snapshot(window, request.as_of), book)
    except ValueError as error:  # InsufficientDataError included: both mean "cannot compute"
        snapshot_error = f"indicators unavailable: {error}"
    market = MarketInputs(
        window=window,
        mode=request.mode or mode_for(window),
        snapshot=snapshot,
        snapshot_error=snapshot_error,
        news=tuple(view.news(request.symbol, NEWS_LIMIT)),
        research=tuple(view.research(request.symbol)),
        book=book,
    )
    return {"market": market}


def mode_for(window: CandleWindow) -> Mode:
    """Simulated candles make a `sim` decision; anything else decided here is a replay."""
    sources = window.sources
    return "sim" if sources and all(source == "sim" for source in sources) else "replay"


def bull(state: DecisionState, services: DecisionServices) -> DecisionState:
    arguments, calls = _side_arguments(state, services, BULL)
    return {"bull": arguments, "model_calls": calls}


def bear(state: DecisionState, services: DecisionServices) -> DecisionState:
    arguments, calls = _side_arguments(state, services, BEAR)
    return {"bear": arguments, "model_calls": calls}


def _side_arguments(
    state: DecisionState, services: DecisionServices, side: Side
) -> tuple[tuple[Argument, ...], dict[Speaker, ModelCall]]:
    """The side's model's arguments when it has one that answered; the rules' otherwise."""
    snapshot = state["market"].snapshot
    if snapshot is None:
        return (), {}
    rules = arguments_for(snapshot, side)
    backend = services.chat.get(side.speaker)
    if backend is None:
        return rules, {}
    answer = model_arguments(backend, side, snapshot, state["request"].tokens)
    return rules if answer.value is None else answer.value, {side.speaker: answer.call}


def researcher(state: DecisionState, services: DecisionServices) -> DecisionState:
    market = state["market"]
    if market.snapshot is None:
        missing = (market.snapshot_error or "indicators unavailable",)
        return {"brief": ResearchBrief(items=(), missing=missing, confidence_factor=0.0)}
    rules = research_brief(market.snapshot, market.news, market.research)
    backend = services.chat.get("researcher")
    if backend is None:
        return {"brief": rules}
    answer = model_brief(
        backend, market.snapshot, rules, market.news, market.research, state["request"].tokens
    )
    brief = rules if answer.value is None else answer.value
    return {"brief": brief, "model_calls": {"researcher": answer.call}}


def debate(state: DecisionState, services: DecisionServices) -> DecisionState:
    market = state["market"]
    if market.snapshot is None:
        reason = market.snapshot_error or "indicators unavailable"
        return {"debate": None, "debate_signal": Abstained(reason=f"no debate: {reason}")}
    calls = state.get("model_calls", {})
    outcome = run_debate(
        state["bull"], state["bear"], state["brief"], services.settings.debate, calls
    )
    judge = services.chat.get("judge")
    if judge is not None:
        answer = model_ruling(judge, outcome.turns, outcome.verdict, state["request"].tokens)
        outcome = with_model_ruling(outcome, answer)
    return {"debate": outcome, "debate_signal": outcome.verdict}


def rl(state: DecisionState, services: DecisionServices) -> DecisionState:
    """The active policy's opinion on MarketView(as_of) and the book, or why it has none.

    It reads the book (position, unrealised PnL) and hands it on in the state, so the gate
    does not read it a second time.
    """
    model = services.rl_model
    if isinstance(model, Abstained):
        return {"rl": model}
    request, market = state["request"], state["market"]
    not_usable = model.out_of_sample_reason(request.timeframe, request.as_of)
    if not_usable is not None:
        return {"rl": Abstained(reason=not_usable)}
    lookback = services.settings.lookback_bars
    if lookback < PARITY_LOOKBACK_BARS:
        return {
            "rl": Abstained(
                reason=f"lookback_bars={lookback} is below the {PARITY_LOOKBACK_BARS} bars the "
                "RL features need to match the ones the model was trained on"
            )
        }
    if market.snapshot is None:
        reason = market.snapshot_error or "indicators unavailable"
        return {"rl": Abstained(reason=f"no RL observation: {reason}")}
    book = services.book(request)
    reading = decayed_sentiment(market.news, request.as_of)
    row = snapshot_feature_row(market.snapshot, None if reading is None else reading.score)
    position, unrealised = book_features(
        book.portfolio, request.symbol, services.settings.limits.max_position_fraction
    )
    observation = build_observation(row, position, unrealised, model.policy.scaling)
    return {"rl": model.policy.opinion(observation), "book": book}


def book_features(
    portfolio: PortfolioView, symbol: str, max_position_fraction: float
) -> tuple[float, float]:
    """Position as a share of the most the profile allows (0..1, the env's 0 flat / 1 long)
    and the open position's unrealised PnL as a fraction of its cost."""
    position = min(1.0, portfolio.position_fraction(symbol) / max_position_fraction)
    holding = portfolio.holdings.get(symbol)
    if holding is None or holding.cost <= 0.0:
        return position, 0.0
    return position, holding.unrealised_pnl / holding.cost


def sentiment(state: DecisionState, _services: DecisionServices) -> DecisionState:
    """The time-decayed mean of the stored news scores; abstains, saying why, without any."""
    request, market = state["request"], state["market"]
    reading = decayed_sentiment(market.news, request.as_of)
    if reading is not None:
        return {"sentiment": reading}
    until = format_timestamp(request.as_of)
    reason = (
        f"no news stored for {request.symbol} up to {until}"
        if not market.news
        else f"{len(market.news)} news items up to {until}, none scored in the last 24 h"
    )
    signal: SentimentSignal = Abstained(reason=reason)
    return {"sentiment": signal}


def fusion(state: DecisionState, services: DecisionServices) -> DecisionState:
    settings = services.settings
    proposal = fuse(
        state["debate_signal"], state["rl"], state["sentiment"], settings.fusion, settings.limits
    )
    return {"proposal": proposal}


def gate(state: DecisionState, services: DecisionServices) -> DecisionState:
    """Read the book, run the auto-pause triggers, then every pre-trade check."""
    request, market = state["request"], state["market"]
    settings = services.settings
    # The rl node has read the book when it had a model to ask; otherwise it is read here.
    book = state["book"] if "book" in state else services.book(request)
    quote = quote_of(request.symbol)
    currency = book.portfolio.currencies.get(quote)
    equity = DailyEquity(
        quote=quote,
        at_day_start=currency.day_start_equity if currency else 0.0,
        now=currency.equity if currency else 0.0,
    )
    triggers = (
        evaluate_triggers(
            TriggerInputs(
                symbol=request.symbol,
                as_of=request.as_of,
                previous_check_ms=book.previous_decision_at,
                closed_trades=book.portfolio.closed_trades,
                equity=equity,
                api_error_times=book.api_error_times,
                news=market.news,
                candles=market.window,
                fills=book.new_fills,
            ),
            settings.limits,
            settings.safety,
        )
        if services.triggers_enabled
        else triggers_off(request.symbol, request.as_of)
    )
    control = services.control(request.symbol)
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
        position_fraction=book.portfolio.position_fraction(request.symbol),
        position_source=f"{services.broker.name} book",
        exposure_fraction=book.portfolio.exposure_fraction(quote),
        equity=equity.now,
        mode=market.mode,
        live_notional_today=services.broker.real_notional_today(request.as_of),
        triggers=triggers,
        real_money=services.broker.real_money,
    )
    safety = evaluate(inputs, settings.limits, settings.safety)
    return {"book": book, "triggers": triggers, "safety": safety}


def execute(state: DecisionState, services: DecisionServices) -> DecisionState:
    """Send what the gate let through to the broker, which re-checks the control state."""
    request, safety = state["request"], state["safety"]
    if safety.verdict == "blocked":
        failed = ", ".join(check.name for check in safety.checks if not check.passed)
        return {"execution": Execution(status="not_executed", reason=f"blocked: {failed}")}
    if safety.action == "hold":
        return {"execution": Execution(status="not_executed", reason="hold: nothing to do")}
    if not request.place_orders:
        reason = "decide-only run: no order sent"
        return {"execution": Execution(status="not_executed", reason=reason)}
    reference = state["market"].window.close[-1]
    outcome = services.broker.submit(
        OrderRequest(
            client_order_id=request.decision_id,
            symbol=request.symbol,
            timeframe=request.timeframe,
            side=safety.action,
            size_fraction=safety.size,
            reference_price=float(reference),
            not_before=request.as_of,
            decision_id=request.decision_id,
        ),
        request.as_of,
    )
    if outcome.status != "accepted":
        reason = f"{services.broker.name} {outcome.status} the order: {outcome.reason}"
        return {"execution": Execution(status="not_executed", reason=reason)}
    order: dict[str, str | float] = {
        "broker": services.broker.name,
        "side": safety.action,
        "quantity": outcome.quantity,
        "reference_price": float(reference),
        "fills_from": format_timestamp(request.as_of),
    }
    reason = "order placed; it fills at the next candle's open"
    return {"execution": Execution(status="executed", reason=reason, orders=(order,))}
