"""The decision path's steps as plain functions: state and services in, a partial state out.

The StateGraph (graph/builder.py) wires them; the benchmark calls them directly to show
what the graph machinery itself costs.
"""

from typing import Literal, NamedTuple

from agents.bear import BEAR
from agents.bull import BULL
from agents.model_agents import model_arguments, model_brief, model_ruling
from agents.researcher import research_brief
from agents.rules import Side, arguments_for
from core.candles import CandleWindow, FloatArray
from core.decision import (
    Abstained,
    Action,
    Execution,
    Mode,
    ModelCall,
    SentimentSignal,
    Verdict,
)
from core.evidence import Argument, ResearchBrief, Speaker
from core.market_features import with_book
from core.sentiment import decayed_sentiment
from core.settings import Settings
from core.timeframes import format_timestamp
from core.trading import OrderOutcome, OrderRequest, PortfolioView, quote_of
from execution.broker import Broker
from graph.debate import run_debate, with_model_ruling
from graph.fusion import fuse
from graph.state import DecisionRequest, DecisionServices, DecisionState, MarketInputs
from rl.features import PARITY_LOOKBACK_BARS, snapshot_feature_row
from rl.observation import Float32Array, build_observation
from rl.registry import ActiveModel
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
    model, request, market = services.rl_model, state["request"], state["market"]
    missing = (
        None if market.snapshot is not None else market.snapshot_error or "indicators unavailable"
    )
    lookback = services.settings.lookback_bars
    unusable = rl_unusable(model, request.timeframe, request.as_of, lookback, missing)
    if unusable is not None:
        return {"rl": unusable}
    # rl_unusable answers for an abstaining model and a missing snapshot.
    assert not isinstance(model, Abstained)
    assert market.snapshot is not None
    book = services.book(request)
    reading = decayed_sentiment(market.news, request.as_of)
    row = snapshot_feature_row(market.snapshot, None if reading is None else reading.score)
    observation = policy_observation(model, row, book.portfolio, request.symbol, services.settings)
    return {"rl": model.policy.opinion(observation), "book": book}


def rl_unusable(
    model: ActiveModel | Abstained,
    timeframe: str,
    as_of: int,
    lookback_bars: int,
    snapshot_error: str | None,
) -> Abstained | None:
    """Why the policy gives no opinion on a decision at ``as_of``, or None when it is asked."""
    if isinstance(model, Abstained):
        return model
    not_usable = model.out_of_sample_reason(timeframe, as_of)
    if not_usable is not None:
        return Abstained(reason=not_usable)
    if lookback_bars < PARITY_LOOKBACK_BARS:
        return Abstained(
            reason=f"lookback_bars={lookback_bars} is below the {PARITY_LOOKBACK_BARS} bars the "
            "RL features need to match the ones the model was trained on"
        )
    if snapshot_error is not None:
        return Abstained(reason=f"no RL observation: {snapshot_error}")
    return None


def policy_observation(
    model: ActiveModel,
    market_row: FloatArray,
    portfolio: PortfolioView,
    symbol: str,
    settings: Settings,
) -> Float32Array:
    """What the policy is shown: the market features and the book's position in ``symbol``."""
    position, unrealised = book_features(portfolio, symbol, settings.limits.max_position_fraction)
    return build_observation(market_row, position, unrealised, model.policy.scaling)


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
    equity = daily_equity(book.portfolio, quote)
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


def daily_equity(portfolio: PortfolioView, quote: str) -> DailyEquity:
    """The quote currency's equity now and at 00:00 UTC, as the triggers and the gate read
    it: 0 for a currency the book does not hold."""
    currency = portfolio.currencies.get(quote)
    return DailyEquity(
        quote=quote,
        at_day_start=currency.day_start_equity if currency else 0.0,
        now=currency.equity if currency else 0.0,
    )


def execute(state: DecisionState, services: DecisionServices) -> DecisionState:
    """Send what the gate let through to the broker, which re-checks the control state."""
    request, safety = state["request"], state["safety"]
    failed = tuple(check.name for check in safety.checks if not check.passed)
    reference = float(state["market"].window.close[-1])
    sent = send_order(
        request, safety.verdict, safety.action, safety.size, failed, reference, services.broker
    )
    if sent.outcome is None or sent.status != "executed":
        return {"execution": Execution(status=sent.status, reason=sent.reason)}
    order: dict[str, str | float] = {
        "broker": services.broker.name,
        "side": safety.action,
        "quantity": sent.outcome.quantity,
        "reference_price": reference,
        "fills_from": format_timestamp(request.as_of),
    }
    return {"execution": Execution(status="executed", reason=sent.reason, orders=(order,))}


class Sent(NamedTuple):
    """What became of a ruling: executed (an order accepted) or not, and why."""

    status: Literal["executed", "not_executed"]
    reason: str
    outcome: OrderOutcome | None  # the broker's answer, when an order was sent


def send_order(
    request: DecisionRequest,
    verdict: Verdict,
    action: Action,
    size: float,
    failed_checks: tuple[str, ...],
    reference: float,
    broker: Broker,
) -> Sent:
    """The gate's ruling sent on: nothing for a block, a hold or a decide-only run; else an
    order at ``reference`` that fills at the next candle's open."""
    if verdict == "blocked" or action == "hold":
        return not_sent(verdict, failed_checks)
    if not request.place_orders:
        return Sent("not_executed", "decide-only run: no order sent", None)
    outcome = broker.submit(
        OrderRequest(
            client_order_id=request.decision_id,
            symbol=request.symbol,
            timeframe=request.timeframe,
            side=action,
            size_fraction=size,
            reference_price=reference,
            not_before=request.as_of,
            decision_id=request.decision_id,
        ),
        request.as_of,
    )
    if outcome.status != "accepted":
        reason = f"{broker.name} {outcome.status} the order: {outcome.reason}"
        return Sent("not_executed", reason, outcome)
    return Sent("executed", "order placed; it fills at the next candle's open", outcome)


def not_sent(verdict: Verdict, failed_checks: tuple[str, ...]) -> Sent:
    """What a blocked ruling or a hold comes to: no order, and why."""
    if verdict == "blocked":
        return Sent("not_executed", f"blocked: {', '.join(failed_checks)}", None)
    return Sent("not_executed", "hold: nothing to do", None)
